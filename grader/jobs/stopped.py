"""Where a job stopped at its limit was, from the child's progress file: the words a timeout or
an out-of-memory message ends with, and the stage its advice is chosen by.

The progress file is the child's (student code could rewrite it): it only ever chooses words and
advice, never a status or a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.core.results import Stage
from grader.jobs.untrusted import read_progress
from grader.protocol import PROGRESS, Progress


@dataclass(frozen=True)
class Stopped:
    stage: str  # a protocol.Stage's value; "": the child left no progress we can read
    words: str  # what to add to the message: "" or " while ..."


def stopped_in(out_dir: Path, limit_seconds: float | None = None, unit: str = "s") -> Stopped:
    """Where the job in out_dir was when it was stopped. limit_seconds: a time limit it ran
    out of, to say what it allows an epoch, in `unit` ("s", "s of CPU time")."""
    progress = read_progress(out_dir / PROGRESS)
    if progress is None:
        return Stopped("", "")
    return Stopped(str(progress.stage), _words(progress, limit_seconds, unit))


def _words(progress: Progress, limit_seconds: float | None, unit: str) -> str:
    if progress.stage is Stage.BUILD:
        return " while building the model (build_model had not returned)"
    if progress.stage is Stage.IMPORT:
        return " while importing the submission (its top-level code had not finished)"
    if progress.stage is not Stage.TRAIN or progress.epochs_done is None:
        return f" while {progress.stage}"
    done, asked = progress.epochs_done, progress.epochs_asked
    words = f" while training, after {done}" + (f" of {asked}" if asked else "") + " epochs"
    if asked and limit_seconds:
        words += f" (the budget allows about {limit_seconds / asked:.3g} {unit} an epoch)"
    return words
