"""The RunOptions that tests run a small course on disk with."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from grader.api import RunOptions


def options(course: dict[str, Path], **overrides: object) -> RunOptions:
    """A run of write_course's course on two workers."""
    settings: dict[str, object] = {
        "submissions": course["submissions"],
        "out": course["out"],
        "assignments": course["assignments"],
        "data_dir": course["data"],
        "cache_dir": course["cache"],
        "workers": 2,
    }
    settings.update(overrides)
    return RunOptions(**settings)  # type: ignore[arg-type]


def cpu_options(course: dict[str, Path], **overrides: object) -> RunOptions:
    """A run on the CPU, on two workers, of a course that keeps its results and cache in its
    "tmp" folder."""
    settings: dict[str, object] = {
        "submissions": course["submissions"],
        "out": course["tmp"] / "results",
        "assignments": course["assignments"],
        "data_dir": course["data"],
        "cache_dir": course["tmp"] / "cache",
        "workers": 2,
        "device": "cpu",
    }
    settings.update(overrides)
    return RunOptions(**settings)  # type: ignore[arg-type]


def attempts(out: Path) -> list[tuple[str, str]]:
    """(student, status) of every attempt a run recorded in OUT/grades.sqlite, oldest first."""
    with sqlite3.connect(out / "grades.sqlite") as db:
        return db.execute("SELECT student, status FROM attempts ORDER BY id").fetchall()
