"""Which datasets exist, where their files live, and the one call that prepares them.

Cheap to import (the command line reads its defaults here); parsing is imported on demand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from grader.core.spec import DATASETS
from grader.data.errors import DataError

if TYPE_CHECKING:  # importing it for real pulls in numpy
    from grader.data.cache import PreparedData


def default_data_dir() -> Path:
    return Path(os.environ.get("GRADER_DATA_DIR") or platformdirs.user_data_path("course-grader"))


def default_cache_dir() -> Path:
    return Path(os.environ.get("GRADER_CACHE_DIR") or platformdirs.user_cache_path("course-grader"))


def prepare(name: str, data_dir: Path, cache_dir: Path, *, download: bool = True) -> PreparedData:
    """Parse the named dataset once and return its cached arrays; later calls reuse the cache."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache directory {cache_dir} ({exc.strerror})") from exc
    if name == "mnist":
        from grader.data import mnist

        return mnist.prepare(data_dir, cache_dir, download)
    from grader.data import har

    return har.prepare(data_dir, cache_dir, download)


def prepare_holdout(name: str, data_dir: Path, cache_dir: Path, *, download: bool = True) -> str:
    """Fetch and check the dataset's public source of private rows (QMNIST's for MNIST); one
    line saying what there is."""
    if name != "mnist":
        return (
            f"{name}: no public hold-out exists (all of its data is public); a spec's "
            "[holdout] folder or from_training keeps one (see the instructor guide)"
        )
    from grader.data import qmnist

    if not qmnist.present(data_dir):
        if not download:
            return f"{name}: {qmnist.absent_note(data_dir)}"
        qmnist.download(data_dir, cache_dir)
    holdout = qmnist.load(data_dir)
    return f"{name}: hold-out {holdout.description}, checksum {holdout.checksum[:16]}"


def holdout_line(data_dir: Path) -> str:
    """Whether MNIST's default hold-out is on this machine (no download, no MD5 check)."""
    from grader.data import qmnist

    if qmnist.present(data_dir):
        return f"hold-out: QMNIST's extra test digits for MNIST are in {qmnist.raw_dir(data_dir)}"
    return f"hold-out: {qmnist.absent_note(data_dir)}"
