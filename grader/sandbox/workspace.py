"""Private folders in the temp folder, one per graded submission (and per probe job)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.sandbox.tree import remove_tree

PREFIX = "grader-job-"


@contextmanager
def workspace() -> Iterator[Path]:
    """A folder traversable (not listable) by the job uids, removed afterwards. Its name holds
    this process's id, so a later grader can tell it from a live one's."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        remove_tree(path)


def job_folders(job: Path) -> tuple[Path, Path]:
    """A job's in folder (read by the child) and out folder (written by it)."""
    in_dir, out_dir = job / "in", job / "out"
    in_dir.mkdir(parents=True)
    out_dir.mkdir()
    in_dir.chmod(0o755)
    return in_dir, out_dir


def remove_stale_workspaces() -> None:
    """Remove what graders killed mid-job (kill -9, power loss) left in the temp folder; what
    cannot be removed stays, and never stops this run."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        owner = folder.name[len(PREFIX) :].split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            remove_tree(folder)
