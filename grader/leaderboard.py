"""Ranking results and writing the leaderboard CSV (always whole: temp file, fsync, rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from grader.grading import Result

COLUMNS = [
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
EXTRA_COLUMNS = ["threads", "weights_sha256", "finished_at"]


def ranked(results: Iterable[Result]) -> pd.DataFrame:
    """One row per result; within each assignment graded rows are ranked by test accuracy, then
    smaller gap, fewer parameters and student id; failed rows follow with no rank."""
    rows = [_row(r) for r in results]
    frame = pd.DataFrame(rows, columns=COLUMNS + EXTRA_COLUMNS + ["_ok"])
    if frame.empty:
        return frame.drop(columns="_ok")
    frame = frame.sort_values(
        ["assignment", "_ok", "test_accuracy", "gap", "params", "student"],
        ascending=[True, False, False, True, True, True],
        na_position="last",
        kind="mergesort",
    )
    ok = frame["_ok"]
    frame["rank"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame.loc[ok, "rank"] = frame[ok].groupby("assignment").cumcount() + 1
    for column in ("params", "epochs", "seed", "threads"):
        frame[column] = frame[column].astype("Int64")
    return frame.drop(columns="_ok").reset_index(drop=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            frame.to_csv(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _row(result: Result) -> dict[str, object]:
    targets = {name.lower(): met for name, met in result.targets.items()}
    return {
        "rank": None,
        "student": result.student,
        "assignment": result.assignment,
        "status": result.status,
        "test_accuracy": _round(result.test_accuracy, 6),
        "train_accuracy": _round(result.train_accuracy, 6),
        "gap": _round(result.gap, 6),
        "target_a": targets.get("a") if result.ok else None,
        "target_b": targets.get("b") if result.ok else None,
        "params": result.params,
        "epochs": result.epochs,
        "train_seconds": _round(result.train_seconds, 2),
        "mode": result.mode,
        "seed": result.seed,
        "message": result.message,
        "threads": result.threads,
        "weights_sha256": result.weights_sha256,
        "finished_at": result.finished_at,
        "_ok": result.ok,
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
