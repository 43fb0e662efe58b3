"""Ctrl-C during `grader run`: it says what was saved, that a run again resumes, and the board
it leaves is marked partial; the next finished run's board replaces it. (That a run again
resumes from what was saved, test_runner's killed run shows, with a real SIGINT.)"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from support.results import graded

from grader.api import batch
from grader.cli import main


def args(course: dict[str, Path]) -> list[str]:
    return [
        "run", str(course["submissions"]), "--out", str(course["out"]), "--assignments",
        str(course["assignments"]), "--data-dir", str(course["data"]), "--cache-dir",
        str(course["cache"]), "--workers", "1",
    ]  # fmt: skip


def one_then_ctrl_c(
    executor: object, pending: list[tuple[Any, Any]], recorded: Callable[..., None], *_: object,
    **__: object,
) -> None:  # fmt: skip
    """Grades the first submission, then the person presses Ctrl-C."""
    recorded(graded(pending[0][0].student, 0.97), 1)
    raise KeyboardInterrupt


def test_ctrl_c_says_what_was_saved_and_marks_the_board_partial(
    course: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = course["out"]
    # No job runs: the grading is faked, so no sandbox is opened, nor warm process started.
    fake = SimpleNamespace(layers=[], prestart=lambda threads, workers: None)
    monkeypatch.setattr(batch, "open_sandbox", lambda *_: nullcontext(fake))
    monkeypatch.setattr(batch, "grade_all", one_then_ctrl_c)
    result = CliRunner().invoke(main, args(course))
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines()[-3:] == [
        f"interrupted: 1 of 3 submissions to grade were graded and saved in "
        f"{out / 'grades.sqlite'} (and every seed finished of the others)",
        "run the same command again to resume: what was saved is reused, not graded again "
        "(timeouts and crashes are graded again, as in every run)",
        f"partial leaderboard, of what the store holds now: {out / 'partial' / 'leaderboard.csv'};"
        " no finished run has written leaderboard.csv yet",
    ]
    assert "Aborted!" not in result.output
    assert len(pd.read_csv(out / "partial" / "leaderboard.csv")) == 1
    assert not (out / "leaderboard.csv").exists()  # never a partial board under its name

    monkeypatch.setattr(batch, "grade_all", lambda *a, **k: None)  # a run that finishes
    again = CliRunner().invoke(main, args(course))
    assert again.exit_code == 0, again.output
    assert (out / "leaderboard.csv").exists() and not (out / "partial").exists()
