"""Parsed datasets as numpy arrays in a cache folder, built once under a lock.

An entry's public folder holds what jobs may read (inputs, training labels); its private folder
(0700) holds the test labels, which only the grader reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock

from grader.core.files import atomic_copy
from grader.data.errors import DataError
from grader.sandbox.tree import remove_tree

PARTS = ("train_inputs", "train_labels", "test_inputs", "test_labels")
PRIVATE_PARTS = frozenset({"test_labels"})
# Part of every cache key: bump it whenever the arrays built from the same raw files change.
CACHE_FORMAT = 2
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PreparedData:
    name: str
    public_dir: Path
    private_dir: Path
    checksum: str
    description: str
    train_size: int
    test_size: int

    def load(self, part: str) -> np.ndarray:
        """Read-only memory map of one cached array."""
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; expected one of {', '.join(PARTS)}")
        array: np.ndarray = np.load(part_path(self, part), allow_pickle=False, mmap_mode="r")
        return array

    @property
    def title(self) -> str:
        """The description without its sizes."""
        return self.description.rsplit(" (", 1)[0]

    def private(self, name: str) -> np.ndarray:
        """An extra array the grader alone reads (Parsed.private), e.g. a hold-out's rows."""
        array: np.ndarray = np.load(self.private_dir / f"{name}.npy", allow_pickle=False)
        return array


@dataclass(frozen=True)
class Parsed:
    title: str
    arrays: dict[str, np.ndarray]
    private: dict[str, np.ndarray] = field(default_factory=dict)  # for the grader alone


def cached(
    name: str,
    data_dir: Path,
    sources: list[Path],
    cache_dir: Path,
    build: Callable[[Path], Parsed],
) -> PreparedData:
    """The entry for these source files, built by build(staging folder) if not cached yet."""
    return derived(name, _source_key(data_dir, sources), cache_dir, build)


def derived(name: str, key: str, cache_dir: Path, build: Callable[[Path], Parsed]) -> PreparedData:
    """The entry stored under name and key, built by build(staging folder) if not cached yet
    (cached() keys it by the source files; a split of another entry, by that entry's sum)."""
    entry = cache_dir / f"{name}-{key}"
    prepared = _open_entry(name, entry)
    if prepared is not None:
        return prepared
    with FileLock(cache_dir / f"{name}.lock"):
        # Another process may have finished the same build while we waited for the lock.
        return _open_entry(name, entry) or _build_entry(name, entry, build)


def install(source: Path, dest: Path) -> None:
    """Copy a downloaded file into the data directory; dest appears complete or not at all."""
    try:
        atomic_copy(source, dest)
    except OSError as exc:
        raise DataError(f"cannot save the download as {dest} ({exc.strerror or exc})") from exc


def part_path(prepared: PreparedData, part: str) -> Path:
    folder = prepared.private_dir if part in PRIVATE_PARTS else prepared.public_dir
    return folder / f"{part}.npy"


def _source_key(data_dir: Path, sources: list[Path]) -> str:
    # Stat data instead of content hashes keeps a warm start far below a second.
    stats = []
    for source in sources:
        info = source.stat()
        stats.append([source.relative_to(data_dir).as_posix(), info.st_size, info.st_mtime_ns])
    text = json.dumps([CACHE_FORMAT, stats])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _open_entry(name: str, entry: Path) -> PreparedData | None:
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        prepared = PreparedData(
            name=name,
            public_dir=entry / "public",
            private_dir=entry / "private",
            checksum=manifest["checksum"],
            description=manifest["description"],
            train_size=manifest["train_size"],
            test_size=manifest["test_size"],
        )
    except (OSError, ValueError, KeyError):
        return None
    complete = all(part_path(prepared, part).is_file() for part in PARTS)
    return prepared if complete else None


def _build_entry(name: str, entry: Path, build: Callable[[Path], Parsed]) -> PreparedData:
    # Holding the lock: whatever else is there is a broken entry or a crashed build's leftovers.
    for leftover in [entry, *entry.parent.glob(f".{name}-*.tmp")]:
        remove_tree(leftover)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".tmp", dir=entry.parent))
    try:
        staging = work / "staging"
        parsed = build(staging)
        remove_tree(staging)
        _write_entry(work, parsed)
        os.replace(work, entry)
    except BaseException:
        remove_tree(work)
        raise
    prepared = _open_entry(name, entry)
    assert prepared is not None, f"cache entry {entry} unreadable right after writing it"
    return prepared


def _write_entry(work: Path, parsed: Parsed) -> None:
    arrays = parsed.arrays
    public, private = work / "public", work / "private"
    public.mkdir()
    private.mkdir()
    for part in PARTS:
        private_part = part in PRIVATE_PARTS
        path = (private if private_part else public) / f"{part}.npy"
        np.save(path, arrays[part], allow_pickle=False)
        path.chmod(0o600 if private_part else 0o644)
    for extra, array in parsed.private.items():
        path = private / f"{extra}.npy"
        np.save(path, array, allow_pickle=False)
        path.chmod(0o600)
    # Explicit modes: student code may run as another user and must not see the test labels.
    public.chmod(0o755)
    private.chmod(0o700)
    work.chmod(0o755)
    train_size, test_size = len(arrays["train_labels"]), len(arrays["test_labels"])
    manifest = {
        "checksum": _checksum(arrays),
        "description": f"{parsed.title} ({train_size} train / {test_size} test)",
        "train_size": train_size,
        "test_size": test_size,
    }
    manifest_path = work / MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    manifest_path.chmod(0o644)


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for part in PARTS:
        array = np.ascontiguousarray(arrays[part])
        digest.update(f"{part}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()
