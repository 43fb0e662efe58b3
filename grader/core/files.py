"""Writing files so that readers see the old version or the whole new one, never a part."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MB = 1 << 20  # budgets in MB are multiples of 2**20 bytes, as the specs count them


@contextmanager
def atomic_path(dest: Path, mode: int = 0o644) -> Iterator[Path]:
    """A temporary path beside dest; when the block succeeds it is synced and replaces dest.

    If the block raises, nothing is left behind and dest is untouched.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        with temp.open("rb+") as handle:
            os.fsync(handle.fileno())
        temp.chmod(mode)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_copy(source: Path, dest: Path) -> None:
    with atomic_path(dest) as temp:
        shutil.copyfile(source, temp)


def megabytes(size: int) -> str:
    """A size as people read it, in the units the specs use."""
    if size < 1 << 10:
        return f"{size} bytes"
    if size < MB:
        return f"{size / (1 << 10):.1f} KB"
    value = size / MB
    return f"{value:.0f} MB" if value == int(value) else f"{value:.1f} MB"


def weights_path(folder: Path, assignment: str, student: str) -> Path:
    """Where a row's graded weights are kept below folder (a run's OUT/weights, `grader
    check --save-weights`'s staging folder, a Slurm task's kept/)."""
    return folder / assignment / f"{student}.safetensors"
