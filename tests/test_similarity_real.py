"""Copy detection on the real HAR data through `grader run`: planted copies of an example
(renamed, reordered, other HPARAMS) are found, and honest students are not, among them two who
handed in the starter (once with its epochs changed)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from support.cli import invoke
from support.copies import MAKERS
from support.course import without_baselines
from support.paths import ASSIGNMENTS, REPO

pytestmark = pytest.mark.slow
COPIES = {"rita": "renamed", "ollie": "reordered", "hana": "hparams"}
STARTER = (REPO / "starter" / "har.py").read_text()


def _class(folder: Path) -> Path:
    frank = (REPO / "submissions" / "frank" / "har.py").read_text()
    files = {
        "frank": frank,
        "alice": (REPO / "submissions" / "alice" / "har.py").read_text(),
        "stan": STARTER,
        "sara": STARTER.replace('"epochs": 25,', '"epochs": 24,'),
        **{student: MAKERS[kind](frank) for student, kind in COPIES.items()},
    }
    for student, text in files.items():
        (folder / student).mkdir(parents=True)
        (folder / student / "har.py").write_text(text)
    return folder


def _specs(folder: Path) -> Path:
    """The HAR spec on its first seed, without baselines, its starter named where it is."""
    folder.mkdir()
    text = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    text = text.replace('"../../starter/har.py"', f'"{REPO / "starter" / "har.py"}"')
    (folder / "har.toml").write_text(text)
    return folder


def test_planted_copies_are_found_and_honest_students_are_not(
    real_data_dir: Path, tmp_path: Path
) -> None:
    submissions = _class(tmp_path / "submissions")
    out = tmp_path / "results"
    ran = invoke(
        "run", submissions, "--out", out, "--assignments", _specs(tmp_path / "specs"),
        "--data-dir", real_data_dir, "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output + ran.stderr
    with (out / "similarity.csv").open(newline="") as file:
        said = {(r["student_a"], r["student_b"]): r for r in csv.DictReader(file)}
    copies = {("frank", "rita"), ("frank", "ollie"), ("frank", "hana"), ("hana", "rita")}
    copies |= {("hana", "ollie"), ("ollie", "rita")}
    for pair in copies:
        assert said[pair]["verdict"] != "none", said[pair]
    assert said[("frank", "rita")]["verdict"] == "code+errors"  # same code, same training
    assert said[("frank", "ollie")]["verdict"] == "code+errors"
    for pair, row in said.items():
        if pair not in copies:
            assert row["verdict"] == "none", row
    # Copies' alike mistakes had the starter's model graded, once, to be held against.
    assert "grading har.py to compare mistakes with it" in ran.stderr
    page = (out / "similarity.html").read_text()
    assert "The starter's model was graded" in page
    again = invoke(
        "similarity", submissions, "--results", out, "--out", tmp_path / "again",
        "--assignments", tmp_path / "specs", "--data-dir", real_data_dir,
        "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert again.exit_code == 0, again.output + again.stderr
    assert (tmp_path / "again" / "similarity.csv").read_bytes() == (
        out / "similarity.csv"
    ).read_bytes()
    assert "har: frank and rita: code+errors (code 100.0%, errors 1.00)" in again.output
    with (out / "leaderboard.csv").open(newline="") as file:
        board = {r["student"]: r["similar_to"] for r in csv.DictReader(file)}
    assert "rita (code+errors)" in board["frank"] and board["alice"] == ""
