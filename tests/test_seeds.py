"""Grading on several seeds: the combined row, per-seed reuse, --seeds, and review in a run."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from support.course import without_baselines
from support.grading import GOOD_HAR, TINY_TEST, TINY_TRAIN, GradeSource
from support.lookups import EXACT_LOOKUP, HIDDEN_IN_WEIGHTS, lookup_table
from support.paths import ASSIGNMENTS
from support.results import seed_results
from support.runs import cpu_options

from grader.api import run
from grader.cli import main
from grader.core.results import CacheKey, Mode, Result, Status
from grader.core.spec import Target, load_spec
from grader.data.cache import PreparedData
from grader.jobs.seeds import combine
from grader.sandbox.box import Sandbox
from grader.store.sqlite import Store

SPEC = load_spec(ASSIGNMENTS / "har.toml")


def seed_row(seed: int, test: float, train: float, **fields: object) -> Result:
    values: dict[str, object] = {
        "test_accuracy": test,
        "train_accuracy": train,
        "gap": train - test,
        "train_seconds": 10.0,
        "agreement": 1.0 - seed / 1000,
        "perturbed_drop": seed / 1000,
        "targets": {"A": True, "B": True},
        **fields,
    }
    return Result("ana", "har", Status(str(values.pop("status", "ok"))), seed=seed, **values)  # type: ignore[arg-type]


def test_the_row_shows_the_means_the_spread_and_meets_targets_on_the_mean() -> None:
    rows = [seed_row(0, 0.97, 0.98), seed_row(1, 0.95, 0.96), seed_row(2, 0.96, 0.97)]
    combined = combine(rows, SPEC)
    assert combined.test_accuracy == pytest.approx(0.96)
    assert combined.train_accuracy == pytest.approx(0.97)
    assert combined.gap == pytest.approx(0.01)
    assert combined.test_accuracy_std == pytest.approx(0.01)
    assert combined.train_seconds == 30.0
    assert combined.seeds == [0, 1, 2] and combined.seed == 0
    # 96% is not above 96%: the mean decides, whatever seed 0 alone met.
    assert combined.targets == {"A": False, "B": False}
    assert combined.agreement == pytest.approx(0.998) and combined.perturbed_drop == 0.002


def test_the_first_seed_that_failed_speaks_for_the_row() -> None:
    rows = [
        seed_row(0, 0.97, 0.98),
        seed_row(1, 0.2, 0.2, status="flagged", message="integrity audit: x", targets={}),
        seed_row(2, 0.0, 0.0, status="error", message="boom"),
    ]
    combined = combine(rows, SPEC)
    assert combined.status is Status.FLAGGED
    assert combined.message == "seed 1: integrity audit: x"
    assert combined.seeds == [0, 1, 2]


def test_seeds_a_failure_stopped_are_named_and_not_counted() -> None:
    failed = seed_row(0, 0.0, 0.0, status="error", message="train: NameError: x")
    combined = combine([failed], SPEC, not_graded=(1, 2))
    assert combined.status is Status.ERROR and combined.seeds == [0]
    assert combined.message == (
        "seed 0: train: NameError: x (not graded on seeds 1, 2: the same code fails the same way)"
    )


def test_one_seed_is_that_seeds_row() -> None:
    spec = SPEC.__class__(SPEC.assignment, targets=(Target("A", min_test_accuracy=0.5),))
    combined = combine([seed_row(4, 0.9, 0.95)], spec)
    assert combined.seeds == [4] and combined.test_accuracy_std is None
    assert combined.test_accuracy == 0.9


# --- each seed's figures, and the class tables of several seeds -------------------------------


def test_the_row_keeps_each_seeds_own_figures() -> None:
    rows = [seed_row(0, 0.97, 0.98), seed_row(1, 0.95, 0.96, holdout_accuracy=0.9, best_epoch=4)]
    combined = combine(rows, SPEC)
    assert combined.per_seed == [
        {"seed": 0, "test_accuracy": 0.97, "train_accuracy": 0.98, "gap": pytest.approx(0.01),
         "train_seconds": 10.0, "holdout_accuracy": None, "best_epoch": None},
        {"seed": 1, "test_accuracy": 0.95, "train_accuracy": 0.96, "gap": pytest.approx(0.01),
         "train_seconds": 10.0, "holdout_accuracy": 0.9, "best_epoch": 4},
    ]  # fmt: skip
    assert [s["seed"] for s in combine([seed_row(4, 0.9, 0.95)], SPEC).per_seed] == [4]


def test_the_seeds_confusion_matrices_are_summed_so_the_tables_agree_with_the_mean() -> None:
    rows = seed_results()
    combined = combine(rows, SPEC)
    for part in ("train", "test"):
        summed = np.sum([r.confusion[part] for r in rows], axis=0)
        assert combined.confusion[part] == summed.tolist()
        assert combined.class_accuracy[part] == pytest.approx(
            list(np.diag(summed) / summed.sum(axis=1))
        )
    test = np.asarray(combined.confusion["test"])
    # Seed 0's diagonal alone says 96.48%: the headline is the mean, and so is the sum's.
    assert rows[0].test_accuracy == pytest.approx(0.96484, abs=1e-5)
    assert combined.test_accuracy == pytest.approx(0.96108, abs=1e-5)
    assert np.trace(test) / test.sum() == pytest.approx(combined.test_accuracy, rel=1e-12)
    train = np.asarray(combined.confusion["train"])
    assert np.trace(train) / train.sum() == pytest.approx(combined.train_accuracy, rel=1e-12)
    assert combined.class_seeds == [0, 1, 2]


def test_a_class_table_some_seed_lacks_is_left_out_not_shown_as_one_seeds() -> None:
    rows = seed_results()
    rows[1] = replace(rows[1], confusion={"train": rows[1].confusion["train"]})
    combined = combine(rows, SPEC)
    assert set(combined.confusion) == set(combined.class_accuracy) == {"train"}


def test_each_seeds_figures_round_trip_in_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "grades.sqlite")
    row = combine(seed_results(), SPEC)
    store.record(row)
    assert store.latest() == [row]
    assert store.latest()[0].per_seed[2]["test_accuracy"] == row.per_seed[2]["test_accuracy"]


def test_a_seed_kept_before_per_seed_existed_is_still_reused(tmp_path: Path) -> None:
    store = Store(tmp_path / "grades.sqlite")
    key = CacheKey("c", "s", "d", "0.2.0", Mode.RETRAIN, "2.5.0", "cpu")
    seed = seed_results((1,))[0]
    store.record_seed(seed, key)
    with sqlite3.connect(store.path) as db:  # as an older grader wrote it: no per_seed
        (text,) = db.execute("SELECT result FROM seed_attempts").fetchone()
        values = json.loads(text)
        del values["per_seed"]
        db.execute("UPDATE seed_attempts SET result = ?", (json.dumps(values),))
    assert store.cached_seed("alice", "har", 1, key) == seed


@pytest.fixture
def course(tmp_path: Path) -> dict[str, Path]:
    from support.data import write_tiny_har

    data = tmp_path / "data"
    write_tiny_har(data, TINY_TRAIN, TINY_TEST)
    assignments = tmp_path / "course" / "assignments"
    assignments.mkdir(parents=True)
    spec = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    spec = spec.replace("max_epochs = 100", "max_epochs = 5").replace(
        "seed = 0\n", "seeds = [0, 1]\n"
    )
    (assignments / "har.toml").write_text(spec)
    submissions = tmp_path / "submissions"
    (submissions / "ana").mkdir(parents=True)
    (submissions / "ana" / "har.py").write_text(GOOD_HAR)
    return {"submissions": submissions, "assignments": assignments, "data": data, "tmp": tmp_path}


def _seed_attempts(course: dict[str, Path]) -> list[int]:
    with sqlite3.connect(course["tmp"] / "results" / "grades.sqlite") as db:
        return [row[0] for row in db.execute("SELECT seed FROM seed_attempts ORDER BY id")]


def test_a_run_grades_each_seed_once_and_reuses_them(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    first = run(cpu_options(course), sandbox, lambda _: None)
    assert first.graded == 1
    row = first.board.iloc[0]
    assert row["seeds"] == "0,1" and row["status"] == "ok"
    assert sorted(_seed_attempts(course)) == [0, 1]
    again = run(cpu_options(course), sandbox, lambda _: None)
    assert (again.graded, again.reused) == (0, 1)
    # Another set of seeds regrades the row, but only the seed not graded yet.
    more = run(cpu_options(course, seeds=(1, 2, 0)), sandbox, lambda _: None)
    assert more.graded == 1
    assert sorted(_seed_attempts(course)) == [0, 1, 2]
    row = more.board.iloc[0]
    assert row["seeds"] == "1,2,0"
    assert not pd.isna(row["test_accuracy_std"])
    csv = pd.read_csv(more.csv_path)
    assert list(csv.columns)[-3:] == ["test_accuracy_std", "seeds", "similar_to"]


BROKEN = GOOD_HAR.replace("torch.nn.ReLU()", "torch.nn.Relu()")  # a typo in a layer's name


def test_a_failing_seed_stops_the_submissions_other_seeds(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    (course["submissions"] / "ben").mkdir()
    (course["submissions"] / "ben" / "har.py").write_text(BROKEN)
    summary = run(cpu_options(course, seeds=(0, 1, 2)), sandbox, lambda _: None)
    rows = summary.board.set_index("student")
    assert rows.loc["ben", "status"] == "error" and rows.loc["ben", "seeds"] == "0"
    assert rows.loc["ben", "message"].startswith("seed 0: ")
    assert rows.loc["ben", "message"].endswith(
        "(not graded on seeds 1, 2: the same code fails the same way)"
    )
    assert rows.loc["ana", "status"] == "ok" and rows.loc["ana", "seeds"] == "0,1,2"
    with sqlite3.connect(course["tmp"] / "results" / "grades.sqlite") as db:
        graded = db.execute("SELECT student, seed FROM seed_attempts ORDER BY student, seed")
        assert graded.fetchall() == [("ana", 0), ("ana", 1), ("ana", 2), ("ben", 0)]


def test_a_reviewed_row_is_graded_again_and_ranked(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    from grader.data.registry import prepare

    data = prepare("uci_har", course["data"], course["tmp"] / "cache", download=False)
    inputs, labels = data.load("test_inputs"), data.load("test_labels")
    (course["submissions"] / "mal").mkdir()
    path = course["submissions"] / "mal" / "har.py"
    path.write_text(EXACT_LOOKUP % repr(lookup_table(inputs, labels)))
    first = run(cpu_options(course, seeds=(0,)), sandbox, lambda _: None)
    mal = first.board[first.board["student"] == "mal"].iloc[0]
    assert mal["status"] == "flagged" and pd.isna(mal["rank"])
    assert mal["message"].startswith("integrity audit: ")
    review = course["assignments"].parent / "reviewed.toml"
    review.write_text(f"[[reviewed]]\nstudent = 'mal'\ncontent_hash = '{mal['content_hash']}'\n")
    second = run(cpu_options(course, seeds=(0,)), sandbox, lambda _: None)
    mal = second.board[second.board["student"] == "mal"].iloc[0]
    assert second.graded == 1
    assert mal["status"] == "ok" and mal["rank"] == 1
    assert mal["message"].endswith("(reviewed)")


@pytest.mark.parametrize(
    ("seeds", "error"),
    [
        ("0,x", "Error: --seeds '0,x': expected seeds 0 or more, as in 0,1,2\n"),
        ("1,1", "Error: --seeds '1,1': a seed is named twice\n"),
    ],
)
def test_bad_seeds_are_one_line_errors(tmp_path: Path, seeds: str, error: str) -> None:
    (tmp_path / "subs").mkdir()
    result = CliRunner().invoke(main, ["run", str(tmp_path / "subs"), "--seeds", seeds])
    assert result.exit_code == 1
    assert result.output == error


def test_bad_seeds_in_a_spec_name_the_key(tmp_path: Path) -> None:
    from grader.core.spec import SpecError

    path = tmp_path / "har.toml"
    path.write_text(
        (ASSIGNMENTS / "har.toml").read_text().replace("seeds = [0, 1, 2]", "seeds = [1, 1]")
    )
    with pytest.raises(SpecError, match=r"key 'grading\.seeds' must hold different seeds"):
        load_spec(path)


# --- --mode verify ---------------------------------------------------------------------------


def test_submitted_weights_within_the_seeds_spread_are_reproduced() -> None:
    rows = [seed_row(s, t, 0.98, submitted_accuracy=0.975) for s, t in enumerate((0.97, 0.95))]
    combined = combine(rows, SPEC)
    # Mean 96%, spread 1.41 points: 97.5% is within 1 + 2 x 1.41 points.
    assert combined.status is Status.OK and combined.submitted_accuracy == 0.975


def test_submitted_weights_that_score_above_the_reproduction_are_irreproducible() -> None:
    rows = [seed_row(s, t, 0.98, submitted_accuracy=0.999) for s, t in enumerate((0.96, 0.962))]
    combined = combine(rows, SPEC)
    assert combined.status is Status.IRREPRODUCIBLE and combined.targets == {}
    assert combined.message == (
        "the submitted weights score 99.90% on the test set; retraining the code reproduces "
        "96.10% (± 0.14 over 2 seeds) (at most 1.3 points less expected)"
    )


def test_verify_mode_flags_weights_the_code_does_not_reproduce(
    grade_source: GradeSource, tiny_har: PreparedData
) -> None:
    import torch
    from safetensors.torch import save

    inputs, labels = np.asarray(tiny_har.load("test_inputs")), tiny_har.load("test_labels")
    n = len(labels)
    weights = {
        "linear.weight": torch.zeros(6, 561),
        "linear.bias": torch.zeros(6),
        "keys": torch.from_numpy(inputs.astype(np.float32)),
        "answers": torch.from_numpy(np.array(labels, dtype=np.int64)),
    }
    result = grade_source(HIDDEN_IN_WEIGHTS % (n, n), mode=Mode.VERIFY, weights=save(weights))
    assert result.mode is Mode.VERIFY and result.submitted_accuracy == 1.0
    assert result.status is Status.OK  # one seed's result; the row's verdict is combine()'s
    combined = combine([result], SPEC)
    assert combined.status is Status.IRREPRODUCIBLE
    assert combined.message.startswith("the submitted weights score 100.00% on the test set; ")
