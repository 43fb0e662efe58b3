"""Every figure the lessons and handouts quote is the one course/lessons/experiments/measured.json
records for the spec's seeds (the fast tests), and the grader still measures what that file
records (the real-data test, which re-grades the cheapest experiments)."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import measured
from support.paths import ASSIGNMENTS, REPO

from grader.core.spec import load_spec

MEASURE = REPO / "bench" / "measure_course.py"
# Re-graded on the real data: the HAR experiments that trained fastest when measured.json was made.
CHEAPEST = 2


def _experiments() -> dict[str, dict]:
    return measured.load()


def test_every_figure_the_course_quotes_is_the_measured_one() -> None:
    experiments = _experiments()
    found = [q for page in measured.PAGES for q in measured.quotes(page)]
    problems = [p for q in found if (p := measured.disagreement(q, experiments)) is not None]
    assert found, "no page quotes a measured figure"
    assert problems == []


def test_every_measured_experiment_is_quoted_somewhere() -> None:
    quoted = {q.experiment for page in measured.PAGES for q in measured.quotes(page)}
    assert set(_experiments()) == quoted


def test_every_experiment_was_graded_on_the_seeds_its_spec_grades() -> None:
    for name, entry in _experiments().items():
        seeds = list(load_spec(ASSIGNMENTS / f"{entry['assignment']}.toml").grading.all_seeds)
        assert entry["seeds"] == seeds, name
        assert [record["seed"] for record in entry["per_seed"]] == seeds, name
        assert entry["status"] == "ok", name
        tests = [record["test"] for record in entry["per_seed"]]
        assert entry["test_mean"] == pytest.approx(statistics.fmean(tests)), name


def test_a_table_row_of_an_experiment_that_quotes_a_figure_says_where_it_came_from() -> None:
    """A decimal figure in a table of a lesson's experiment without a marker would go
    unchecked; a table's heading (the row above `| --- |`) needs none."""
    unmarked = []
    for page in (REPO / "course" / "lessons").glob("*.md"):
        lines = page.read_text().partition("## Experiment")[2].splitlines()
        for line, below in itertools.pairwise([*lines, ""]):
            row = line.startswith("|") and not below.startswith("| ---")
            if row and re.search(r"\d\.\d", line) and "measured:" not in line:
                unmarked.append(f"{page.name}: {line}")
    assert unmarked == []


PAGE = """\
| 5 | 98.08 | 95.81 ± 0.56 | not met | <!-- measured: e5 train_mean% test_mean% test_std% A -->
Stopped after 11 epochs <!-- measured: es epochs@0 --> and 7 <!-- measured: es epochs@1 -->.
Test 0.9620 <!-- measured: e5 test@0 -->, loss 0.5 <!-- measured: e5 loss@0:e2 -->, 95.81 <!--\
 measured: e5 test_mean% test_std% -->
"""
MEASURED: dict[str, dict[str, Any]] = {
    "e5": {
        "targets": {"A": False},
        "train_mean": 0.98081,
        "test_mean": 0.95812,
        "gap_mean": 0.0226,
        "test_std": 0.0056,
        "per_seed": [{"seed": 0, "test": 0.9621, "history": [{"epoch": 2, "loss": 0.5}]}],
    },
    "es": {"per_seed": [{"seed": 0, "epochs": 11}, {"seed": 1, "epochs": 8}]},
}


def test_the_checker_names_each_figure_that_disagrees_and_where(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    said = [measured.disagreement(q, MEASURED) for q in measured.quotes(page)]
    assert [s for s in said if s is not None] == [
        "page.md:2: es epochs@1: the page says 7, measured.json says 8",
        "page.md:3: e5 test@0: the page says 0.9620, measured.json says 0.9621",
        "page.md:3: e5 test_mean%: fewer figures before the marker than fields in it",
        "page.md:3: e5 test_std%: fewer figures before the marker than fields in it",
    ]
    assert said[:4] == [None] * 4  # the table row agrees, to the decimals it wrote


def test_a_marker_naming_an_unknown_experiment_or_field_is_a_disagreement(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("0.5 <!-- measured: nowhere test_mean --> 0.5 <!-- measured: e5 speed -->\n")
    said = [measured.disagreement(q, MEASURED) for q in measured.quotes(page)]
    assert said[0] == "page.md:1: nowhere test_mean: no such experiment in measured.json"
    assert said[1] is not None and said[1].startswith("page.md:1: e5 speed: not a measured field")


@pytest.mark.slow
def test_the_grader_still_measures_what_measured_json_records(
    real_data_dir: Path, tmp_path: Path
) -> None:
    recorded = _experiments()
    # Training time stands for cost on HAR, whose data and evaluation are small; an MNIST row
    # pays MNIST's and QMNIST's evaluation however short its training.
    cost = {
        name: sum(r["train_seconds"] for r in e["per_seed"])
        for name, e in recorded.items()
        if e["assignment"] == "har"
    }
    cheapest = sorted(cost, key=cost.__getitem__)[:CHEAPEST]
    out = tmp_path / "measured.json"
    argv = [sys.executable, str(MEASURE), "--data-dir", str(real_data_dir), "--cache-dir",
            str(tmp_path / "cache"), "--out", str(out), "--only", *cheapest]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    again = json.loads(out.read_text())["experiments"]
    for name in cheapest:
        # Deterministic grading: the same figures to the last bit (a new torch or another CPU
        # may change them; then rerun bench/measure_course.py and the pages' figures).
        assert _figures(again[name]) == _figures(recorded[name]), name


def _figures(entry: dict) -> list[tuple]:
    """What the pages quote of an experiment: each seed's figures and per-epoch record, and
    the row's."""
    keys = ("status", "train", "test", "epochs", "best_epoch")
    epochs = ("epoch", "loss", "accuracy", "val_accuracy")
    return [
        (*(record[k] for k in keys), [tuple(e[k] for k in epochs) for e in record["history"]])
        for record in entry["per_seed"]
    ] + [(entry["test_mean"], entry["test_std"], entry["targets"])]
