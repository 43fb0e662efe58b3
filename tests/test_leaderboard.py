"""Ranking results and writing the leaderboard CSV atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.paths import ASSIGNMENTS
from support.results import failed, ok

from grader.core import files
from grader.core.results import Result
from grader.core.spec import load_spec
from grader.publish.export import write_csv
from grader.publish.ranking import columns, ranked, target_names

REQUIRED = [
    "rank",
    "student",
    "assignment",
    "status",
    "test_accuracy",
    "train_accuracy",
    "gap",
    "target_a",
    "target_b",
    "params",
    "epochs",
    "train_seconds",
    "mode",
    "seed",
    "message",
]
HEADER = (
    "rank,student,assignment,status,test_accuracy,train_accuracy,gap,target_a,target_b,"
    "params,epochs,train_seconds,mode,seed,message,threads,weights_sha256,finished_at,kind,late,"
    "agreement,perturbed_drop,holdout_accuracy,holdout,content_hash,test_accuracy_std,seeds"
)


def order(frame: pd.DataFrame, assignment: str = "mnist") -> list[tuple[Any, str]]:
    rows = frame[frame["assignment"] == assignment]
    return [
        (None if pd.isna(r) else int(r), s)
        for r, s in zip(rows["rank"], rows["student"], strict=True)
    ]


# --- ranking --------------------------------------------------------------------------------


def test_columns_start_with_the_required_fifteen_in_order() -> None:
    frame = ranked([ok("alice", 0.97)])
    assert list(frame.columns)[:15] == REQUIRED
    assert list(frame.columns) == [
        *REQUIRED, "threads", "weights_sha256", "finished_at", "kind", "late",
        "agreement", "perturbed_drop", "holdout_accuracy", "holdout", "content_hash",
        "test_accuracy_std", "seeds"]  # fmt: skip
    assert "_ok" not in frame.columns


def test_empty_results_give_an_empty_frame_with_the_columns() -> None:
    frame = ranked([], ["A", "B"])
    assert frame.empty
    assert list(frame.columns)[:15] == REQUIRED
    assert "_ok" not in frame.columns


def test_ranked_by_test_accuracy_descending() -> None:
    frame = ranked([ok("carol", 0.95), ok("alice", 0.99), ok("bob", 0.97)])
    assert order(frame) == [(1, "alice"), (2, "bob"), (3, "carol")]


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        # equal accuracy: the smaller gap wins
        ([ok("a", 0.97, gap=0.03), ok("b", 0.97, gap=0.01)], ["b", "a"]),
        # a negative gap is smaller still
        ([ok("a", 0.97, gap=0.0), ok("b", 0.97, gap=-0.01)], ["b", "a"]),
        # equal accuracy and gap: fewer parameters win
        ([ok("a", 0.97, params=5000), ok("b", 0.97, params=100)], ["b", "a"]),
        # everything equal: student id decides
        ([ok("zed", 0.97), ok("amy", 0.97)], ["amy", "zed"]),
        # accuracy beats every tie-breaker
        ([ok("a", 0.96, gap=0.0, params=1), ok("b", 0.97, gap=0.1, params=10**6)], ["b", "a"]),
        # the gap beats the parameter count
        ([ok("a", 0.97, gap=0.01, params=1), ok("b", 0.97, gap=0.001, params=10**6)], ["b", "a"]),
    ],
)
def test_tie_breakers(results: list[Result], expected: list[str]) -> None:
    frame = ranked(results)
    assert order(frame) == [(i + 1, s) for i, s in enumerate(expected)]


def test_ranks_restart_per_assignment_and_assignments_are_grouped() -> None:
    frame = ranked(
        [
            ok("a", 0.90, assignment="mnist"),
            ok("b", 0.99, assignment="har"),
            ok("c", 0.95, assignment="mnist"),
            ok("d", 0.80, assignment="har"),
        ]
    )
    assert list(frame["assignment"]) == ["har", "har", "mnist", "mnist"]
    assert order(frame, "har") == [(1, "b"), (2, "d")]
    assert order(frame, "mnist") == [(1, "c"), (2, "a")]
    assert list(frame.index) == [0, 1, 2, 3]


def test_failed_rows_come_last_without_rank_or_targets() -> None:
    frame = ranked(
        [failed("aaron", "timeout"), ok("zoe", 0.5), failed("bea", "invalid"), ok("yan", 0.99)]
    )
    assert order(frame) == [(1, "yan"), (2, "zoe"), (None, "aaron"), (None, "bea")]
    bad = frame[frame["status"] != "ok"]
    assert bad["target_a"].isna().all()
    assert bad["target_b"].isna().all()
    assert list(bad["status"]) == ["timeout", "invalid"]


def test_all_failed_rows_have_no_rank() -> None:
    frame = ranked([failed("b"), failed("a")])
    assert frame["rank"].isna().all()
    assert list(frame["student"]) == ["a", "b"]


def test_values_of_an_ok_row() -> None:
    result = ok(
        "alice",
        0.9712345678,
        gap=-0.0123456789,
        params=4321,
        mode="load",
        seed=7,
        threads=2,
        message="",
    )
    row = ranked([result]).iloc[0]
    assert row["rank"] == 1
    assert row["test_accuracy"] == 0.971235
    assert row["gap"] == -0.012346
    assert row["train_seconds"] == 1.23
    assert (bool(row["target_a"]), bool(row["target_b"])) == (True, False)
    assert (row["params"], row["epochs"], row["seed"], row["threads"]) == (4321, 3, 7, 2)
    assert (row["mode"], row["weights_sha256"]) == ("load", "ab" * 32)


def test_integer_columns_stay_integers_next_to_failed_rows() -> None:
    frame = ranked([ok("a", 0.9, params=12), failed("b")])
    for column in ("rank", "params", "epochs", "seed", "threads"):
        assert str(frame[column].dtype) == "Int64", column


# --- target columns come from the specs' target names ------------------------------------------


def test_the_course_specs_give_target_a_and_b_in_place(tmp_path: Path) -> None:
    specs = {name: load_spec(ASSIGNMENTS / f"{name}.toml") for name in ("har", "mnist")}
    assert target_names(specs) == ["A", "B"]
    assert columns(target_names(specs))[:15] == REQUIRED


def test_a_course_with_a_target_c_gets_a_target_c_column() -> None:
    results = [ok("alice", 0.99, targets={"A": True, "B": True, "Stretch": False})]
    frame = ranked(results, ["A", "B", "Stretch"])
    assert list(frame.columns)[7:10] == ["target_a", "target_b", "target_stretch"]
    assert not frame.loc[0, "target_stretch"]


def test_targets_named_only_by_stored_results_still_get_columns() -> None:
    frame = ranked([ok("alice", 0.99, targets={"A": True, "Z": True})], ["A"])
    assert list(frame.columns)[7:9] == ["target_a", "target_z"]


def test_an_assignment_without_a_target_leaves_that_column_empty() -> None:
    frame = ranked(
        [ok("a", 0.9), ok("b", 0.9, assignment="har", targets={"C": True})], ["A", "B", "C"]
    )
    by_student = frame.set_index("student")
    assert pd.isna(by_student.loc["a", "target_c"]) and bool(by_student.loc["b", "target_c"])
    assert pd.isna(by_student.loc["b", "target_a"])


# --- write_csv ------------------------------------------------------------------------------


def board() -> pd.DataFrame:
    return ranked(
        [
            ok("alice", 0.99),
            ok("bob", 0.95, gap=0.03),
            failed("carol", message="forward raised, with a comma"),
            ok("dan", 0.97, assignment="har"),
        ]
    )


def test_csv_header_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.csv"
    frame = board()
    write_csv(frame, path)
    assert path.read_text().splitlines()[0] == HEADER
    back = pd.read_csv(path)
    assert list(back.columns) == list(frame.columns)
    assert list(back["student"]) == ["dan", "alice", "bob", "carol"]
    assert back["rank"].astype("Int64").tolist() == [1, 1, 2, pd.NA]
    assert back["test_accuracy"].tolist()[:3] == [0.97, 0.99, 0.95]
    assert back["target_a"].tolist()[:3] == [True, True, False]
    assert back["target_b"].tolist()[:3] == [False, True, False]
    assert pd.isna(back["target_a"][3]) and pd.isna(back["target_b"][3])
    assert back["message"][3] == "forward raised, with a comma"
    assert back["params"].astype("Int64").tolist() == [1000, 1000, 1000, pd.NA]


def test_csv_is_world_readable_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "leaderboard.csv"  # the parent is created
    write_csv(board(), path)
    assert sorted(os.listdir(path.parent)) == ["leaderboard.csv"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_csv_of_an_empty_board_is_just_the_header(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.csv"
    write_csv(ranked([], ["A", "B"]), path)
    assert path.read_text().splitlines() == [HEADER]


def test_rewriting_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.csv"
    write_csv(board(), path)
    write_csv(ranked([ok("solo", 0.5)]), path)
    assert pd.read_csv(path)["student"].tolist() == ["solo"]


def _fail(*args: Any, **kwargs: Any) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("target", ["os.replace", "to_csv", "fsync"])
def test_failed_write_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    path = tmp_path / "leaderboard.csv"
    write_csv(ranked([ok("old", 0.5)]), path)
    before = path.read_bytes()
    if target == "os.replace":
        monkeypatch.setattr(files.os, "replace", _fail)
    elif target == "fsync":
        monkeypatch.setattr(files.os, "fsync", _fail)
    else:
        monkeypatch.setattr(pd.DataFrame, "to_csv", _fail)
    with pytest.raises(OSError, match="No space left on device"):
        write_csv(board(), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["leaderboard.csv"]


def test_interrupted_write_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_csv(board(), tmp_path / "leaderboard.csv")
    assert os.listdir(tmp_path) == []
