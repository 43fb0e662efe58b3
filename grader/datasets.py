"""Turn the raw MNIST and UCI HAR files into cached numpy arrays the grader can mmap."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import platformdirs
from filelock import FileLock

from grader import fetch

DATASETS = ("mnist", "uci_har")
PARTS = ("train_inputs", "train_labels", "test_inputs", "test_labels")
PRIVATE_PARTS = frozenset({"test_labels"})

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# Expected MD5 per MNIST file; None means torchvision's own list. Tests swap in their tiny files'.
MNIST_MD5: dict[str, str] | None = None

HAR_URL = (
    "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
)
HAR_FOLDER = "UCI HAR Dataset"
HAR_ZIP = f"{HAR_FOLDER}.zip"
HAR_FILES = ("train/X_train.txt", "train/y_train.txt", "test/X_test.txt", "test/y_test.txt")
HAR_FEATURES = 561
HAR_CLASSES = 6
# Git blob ids of the official files: the only published checksums that outlive the UCI site.
HAR_BLOB_IDS = {
    "train/X_train.txt": "b06f3e4c7cddf435f2f2b102b4824f51ee8a6298",
    "train/y_train.txt": "6ff495a02c8d78aacf3ffade7c31846c5e5a3cac",
    "test/X_test.txt": "f3c01cbd355e0000229bce4e38156ee338fa6b08",
    "test/y_test.txt": "e314f2b7e646b13411a8b78b2aa25b92ef1349f1",
}
# Label files of the subject-disjoint re-split of the official training subjects.
HAR_RESPLIT_MD5 = {
    "train/y_train.txt": "916ec882c7bdf15be49127a0fde7b98c",
    "test/y_test.txt": "c30d6d9022c154072794ad19a0cdebea",
}

# Part of every cache key: bump it whenever the arrays built from the same raw files change.
_CACHE_FORMAT = 1
_MANIFEST = "manifest.json"


class DataError(Exception):
    """Data is missing or unusable; the message is one line naming the file(s) and the fix."""


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
        array: np.ndarray = np.load(_part_path(self, part), allow_pickle=False, mmap_mode="r")
        return array


class _Parsed(NamedTuple):
    title: str
    arrays: dict[str, np.ndarray]


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
        return _prepare_mnist(data_dir, cache_dir, download)
    return _prepare_har(data_dir, cache_dir, download)


# --- cache -----------------------------------------------------------------------------


def _cached(
    name: str,
    data_dir: Path,
    sources: list[Path],
    cache_dir: Path,
    build: Callable[[Path], _Parsed],
) -> PreparedData:
    entry = cache_dir / f"{name}-{_source_key(data_dir, sources)}"
    prepared = _open_entry(name, entry)
    if prepared is not None:
        return prepared
    with FileLock(cache_dir / f"{name}.lock"):
        # Another process may have finished the same build while we waited for the lock.
        return _open_entry(name, entry) or _build_entry(name, entry, build)


def _source_key(data_dir: Path, sources: list[Path]) -> str:
    # Stat data instead of content hashes keeps a warm start far below a second.
    stats = []
    for source in sources:
        info = source.stat()
        stats.append([source.relative_to(data_dir).as_posix(), info.st_size, info.st_mtime_ns])
    text = json.dumps([_CACHE_FORMAT, stats])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _open_entry(name: str, entry: Path) -> PreparedData | None:
    try:
        manifest = json.loads((entry / _MANIFEST).read_text())
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
    complete = all(_part_path(prepared, part).is_file() for part in PARTS)
    return prepared if complete else None


def _part_path(prepared: PreparedData, part: str) -> Path:
    folder = prepared.private_dir if part in PRIVATE_PARTS else prepared.public_dir
    return folder / f"{part}.npy"


def _build_entry(name: str, entry: Path, build: Callable[[Path], _Parsed]) -> PreparedData:
    # Holding the lock: whatever else is there is a broken entry or a crashed build's leftovers.
    for leftover in [entry, *entry.parent.glob(f".{name}-*.tmp")]:
        shutil.rmtree(leftover, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".tmp", dir=entry.parent))
    try:
        staging = work / "staging"
        parsed = build(staging)
        shutil.rmtree(staging, ignore_errors=True)
        _write_entry(work, parsed)
        os.replace(work, entry)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    prepared = _open_entry(name, entry)
    assert prepared is not None, f"cache entry {entry} unreadable right after writing it"
    return prepared


def _write_entry(work: Path, parsed: _Parsed) -> None:
    arrays = parsed.arrays
    public, private = work / "public", work / "private"
    public.mkdir()
    private.mkdir()
    for part in PARTS:
        private_part = part in PRIVATE_PARTS
        path = (private if private_part else public) / f"{part}.npy"
        np.save(path, arrays[part], allow_pickle=False)
        path.chmod(0o600 if private_part else 0o644)
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
    manifest_path = work / _MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    manifest_path.chmod(0o644)


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for part in PARTS:
        array = np.ascontiguousarray(arrays[part])
        digest.update(f"{part}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _install(src: Path, dest: Path) -> None:
    """Copy a downloaded file into the data directory; dest appears complete or not at all."""
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, part)
        os.replace(part, dest)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise DataError(f"cannot save the download as {dest} ({exc.strerror or exc})") from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --- MNIST -----------------------------------------------------------------------------


def _prepare_mnist(data_dir: Path, cache_dir: Path, download: bool) -> PreparedData:
    raw_dir = data_dir / "MNIST" / "raw"
    sources = [raw_dir / file_name for file_name in MNIST_FILES]
    if not all(source.is_file() for source in sources):
        if not download:
            raise DataError(f"MNIST files missing: put {', '.join(MNIST_FILES)} in {raw_dir}/")
        _download_mnist(raw_dir, cache_dir)
    return _cached(
        "mnist", data_dir, sources, cache_dir, lambda staging: _build_mnist(raw_dir, staging)
    )


def _download_mnist(raw_dir: Path, cache_dir: Path) -> None:
    import torchvision  # deferred: importing it takes seconds and a warm cache never needs it

    with tempfile.TemporaryDirectory(dir=cache_dir) as staging:
        try:
            # torchvision owns MNIST's mirrors and checks its own MD5s while downloading.
            torchvision.datasets.MNIST(staging, train=True, download=True)
        except Exception as exc:  # torchvision raises whatever its mirrors and urllib throw
            raise DataError(
                f"cannot download MNIST ({_one_line(exc)}); "
                f"put {', '.join(MNIST_FILES)} in {raw_dir}/"
            ) from exc
        for file_name in MNIST_FILES:
            if not (raw_dir / file_name).is_file():
                _install(Path(staging) / "MNIST" / "raw" / file_name, raw_dir / file_name)


def _mnist_md5() -> dict[str, str]:
    if MNIST_MD5 is not None:
        return MNIST_MD5
    import torchvision

    return dict(torchvision.datasets.MNIST.resources)


def _build_mnist(raw_dir: Path, staging: Path) -> _Parsed:
    import torchvision

    expected = _mnist_md5()
    # torchvision only reads uncompressed files below <root>/MNIST/raw, and raw_dir may be
    # read-only, so the verified archives are unpacked into a throwaway root.
    staged_raw = staging / "MNIST" / "raw"
    staged_raw.mkdir(parents=True)
    for file_name in MNIST_FILES:
        source = raw_dir / file_name
        if fetch.file_digest(source, "md5") != expected[file_name]:
            raise DataError(
                f"{source} is corrupt (MD5 mismatch); replace it with the original file"
            )
        with gzip.open(source) as packed, (staged_raw / source.stem).open("wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
    train = torchvision.datasets.MNIST(staging, train=True, download=False)
    test = torchvision.datasets.MNIST(staging, train=False, download=False)
    return _Parsed(
        "MNIST",
        {
            "train_inputs": train.data.numpy()[:, None],
            "train_labels": train.targets.numpy().astype(np.int64),
            "test_inputs": test.data.numpy()[:, None],
            "test_labels": test.targets.numpy().astype(np.int64),
        },
    )


# --- UCI HAR ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _HarInput:
    """The unpacked 'UCI HAR Dataset' folder, or the zip that holds it."""

    path: Path
    zipped: bool

    def label(self, member: str) -> str:
        return str(self.path / HAR_FOLDER / member if self.zipped else self.path / member)

    def read(self, member: str) -> bytes:
        if not self.zipped:
            return (self.path / member).read_bytes()
        try:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(f"{HAR_FOLDER}/{member}")
        except KeyError as exc:
            raise DataError(
                f"{self.label(member)} is missing; {_har_hint(self.path.parent)}"
            ) from exc
        except zipfile.BadZipFile as exc:
            raise DataError(
                f"{self.path} is not a valid zip archive; replace it with the original file"
            ) from exc


def _har_hint(har_dir: Path) -> str:
    return f"put the '{HAR_FOLDER}' folder or '{HAR_ZIP}' in {har_dir}/"


def _prepare_har(data_dir: Path, cache_dir: Path, download: bool) -> PreparedData:
    har_dir = data_dir / "UCI_HAR"
    har_input = _har_input(har_dir, cache_dir, download)
    if har_input.zipped:
        sources = [har_input.path]
    else:
        sources = [har_input.path / member for member in HAR_FILES]
        for source in sources:
            if not source.is_file():
                raise DataError(f"{source} is missing; {_har_hint(har_dir)}")
    return _cached("uci_har", data_dir, sources, cache_dir, lambda _staging: _parse_har(har_input))


def _har_input(har_dir: Path, cache_dir: Path, download: bool) -> _HarInput:
    folder, archive = har_dir / HAR_FOLDER, har_dir / HAR_ZIP
    # The folder wins over the zip: it is what a user edits, e.g. to supply a re-split.
    if folder.is_dir():
        return _HarInput(folder, zipped=False)
    if not archive.is_file():
        if not download:
            raise DataError(f"UCI HAR data missing: {_har_hint(har_dir)}")
        _download_har(har_dir, cache_dir)
    return _HarInput(archive, zipped=True)


def _download_har(har_dir: Path, cache_dir: Path) -> None:
    hint = _har_hint(har_dir)
    with tempfile.TemporaryDirectory(dir=cache_dir) as staging:
        outer = Path(staging) / "download.zip"
        try:
            fetch.download(HAR_URL, outer, offline_hint=hint)
        except fetch.FetchError as exc:
            raise DataError(str(exc)) from exc
        inner = Path(staging) / HAR_ZIP
        try:
            # The official download is a zip wrapped around the zip that holds the folder.
            with (
                zipfile.ZipFile(outer) as archive,
                archive.open(HAR_ZIP) as packed,
                inner.open("wb") as out,
            ):
                shutil.copyfileobj(packed, out)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{HAR_URL} did not contain '{HAR_ZIP}'; {hint}") from exc
        _check_official(_HarInput(inner, zipped=True), hint)
        _install(inner, har_dir / HAR_ZIP)


def _check_official(har_input: _HarInput, hint: str) -> None:
    for member, blob_id in HAR_BLOB_IDS.items():
        data = har_input.read(member)
        actual = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
        if actual != blob_id:
            raise DataError(
                f"downloaded {member} differs from the official file (git blob id {actual}); {hint}"
            )


def _parse_har(har_input: _HarInput) -> _Parsed:
    raw = {member: har_input.read(member) for member in HAR_FILES}
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        x_member, y_member = f"{split}/X_{split}.txt", f"{split}/y_{split}.txt"
        inputs = _parse_table(raw[x_member], har_input.label(x_member), HAR_FEATURES, np.float32)
        labels = _parse_table(raw[y_member], har_input.label(y_member), 1, np.int64)[:, 0]
        if len(inputs) != len(labels):
            raise DataError(
                f"{har_input.label(x_member)}: {len(inputs)} rows but "
                f"{Path(y_member).name} has {len(labels)}"
            )
        _check_labels(labels, har_input.label(y_member))
        arrays[f"{split}_inputs"] = inputs
        arrays[f"{split}_labels"] = labels - 1  # files count activities from 1
    resplit = all(
        hashlib.md5(raw[member], usedforsecurity=False).hexdigest() == md5
        for member, md5 in HAR_RESPLIT_MD5.items()
    )
    return _Parsed("UCI HAR re-split" if resplit else "UCI HAR", arrays)


def _parse_table(data: bytes, label: str, columns: int, dtype: type[np.generic]) -> np.ndarray:
    # np.loadtxt's own messages count rows from 0 and say nothing useful about short rows,
    # so the shape is checked first by a cheap pass over the lines.
    rows = 0
    for number, line in enumerate(data.splitlines(), start=1):
        values = len(line.split())
        if values == 0:
            continue
        if values != columns:
            raise DataError(f"{label}: row {number} has {values} values, expected {columns}")
        rows += 1
    if rows == 0:
        raise DataError(f"{label}: no data rows; replace it with the original file")
    try:
        return np.loadtxt(io.BytesIO(data), dtype=dtype, ndmin=2)
    except ValueError as exc:
        kind = np.dtype(dtype).name
        raise DataError(
            f"{label}: not all values are {kind} numbers; replace it with the original file"
        ) from exc


def _check_labels(labels: np.ndarray, label: str) -> None:
    bad = np.flatnonzero((labels < 1) | (labels > HAR_CLASSES))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{label}: row {row + 1} has label {labels[row]}, expected 1 to {HAR_CLASSES}"
        )
