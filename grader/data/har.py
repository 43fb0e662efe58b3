"""UCI HAR from the original "UCI HAR Dataset" folder or zip; downloads are checked against the
official files' git blob ids, the only published checksums that outlive the UCI site."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.data import fetch
from grader.data.cache import Parsed, PreparedData, cached, install
from grader.data.errors import DataError

URL = (
    "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
)
FOLDER = "UCI HAR Dataset"
ZIP = f"{FOLDER}.zip"
FILES = ("train/X_train.txt", "train/y_train.txt", "test/X_test.txt", "test/y_test.txt")
FEATURES = 561
CLASSES = 6
BLOB_IDS = {
    "train/X_train.txt": "b06f3e4c7cddf435f2f2b102b4824f51ee8a6298",
    "train/y_train.txt": "6ff495a02c8d78aacf3ffade7c31846c5e5a3cac",
    "test/X_test.txt": "f3c01cbd355e0000229bce4e38156ee338fa6b08",
    "test/y_test.txt": "e314f2b7e646b13411a8b78b2aa25b92ef1349f1",
}
# Label files of the subject-disjoint re-split of the official training subjects.
RESPLIT_MD5 = {
    "train/y_train.txt": "916ec882c7bdf15be49127a0fde7b98c",
    "test/y_test.txt": "c30d6d9022c154072794ad19a0cdebea",
}


@dataclass(frozen=True)
class _Input:
    """The unpacked 'UCI HAR Dataset' folder, or the zip that holds it."""

    path: Path
    zipped: bool

    def label(self, member: str) -> str:
        return str(self.path / FOLDER / member if self.zipped else self.path / member)

    def read(self, member: str) -> bytes:
        if not self.zipped:
            return (self.path / member).read_bytes()
        try:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(f"{FOLDER}/{member}")
        except KeyError as exc:
            raise DataError(f"{self.label(member)} is missing; {_hint(self.path.parent)}") from exc
        except zipfile.BadZipFile as exc:
            raise DataError(
                f"{self.path} is not a valid zip archive; replace it with the original file"
            ) from exc


def _hint(har_dir: Path) -> str:
    return f"put the '{FOLDER}' folder or '{ZIP}' in {har_dir}/"


def prepare(data_dir: Path, cache_dir: Path, download: bool) -> PreparedData:
    har_dir = data_dir / "UCI_HAR"
    har_input = _find_input(har_dir, cache_dir, download)
    if har_input.zipped:
        sources = [har_input.path]
    else:
        sources = [har_input.path / member for member in FILES]
        for source in sources:
            if not source.is_file():
                raise DataError(f"{source} is missing; {_hint(har_dir)}")
    return cached("uci_har", data_dir, sources, cache_dir, lambda _staging: _parse(har_input))


def _find_input(har_dir: Path, cache_dir: Path, download: bool) -> _Input:
    folder, archive = har_dir / FOLDER, har_dir / ZIP
    # The folder wins over the zip: it is what a user edits, e.g. to supply a re-split.
    if folder.is_dir():
        return _Input(folder, zipped=False)
    if not archive.is_file():
        if not download:
            raise DataError(f"UCI HAR data missing: {_hint(har_dir)}")
        _download(har_dir, cache_dir)
    return _Input(archive, zipped=True)


def _download(har_dir: Path, cache_dir: Path) -> None:
    hint = _hint(har_dir)
    with tempfile.TemporaryDirectory(dir=cache_dir) as staging:
        outer = Path(staging) / "download.zip"
        try:
            fetch.download(URL, outer, offline_hint=hint)
        except fetch.FetchError as exc:
            raise DataError(str(exc)) from exc
        inner = Path(staging) / ZIP
        try:
            # The official download is a zip wrapped around the zip that holds the folder.
            with (
                zipfile.ZipFile(outer) as archive,
                archive.open(ZIP) as packed,
                inner.open("wb") as out,
            ):
                shutil.copyfileobj(packed, out)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise DataError(f"{URL} did not contain '{ZIP}'; {hint}") from exc
        _check_official(_Input(inner, zipped=True), hint)
        install(inner, har_dir / ZIP)


def _check_official(har_input: _Input, hint: str) -> None:
    for member, blob_id in BLOB_IDS.items():
        data = har_input.read(member)
        actual = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
        if actual != blob_id:
            raise DataError(
                f"downloaded {member} differs from the official file (git blob id {actual}); {hint}"
            )


def _parse(har_input: _Input) -> Parsed:
    raw = {member: har_input.read(member) for member in FILES}
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        x_member, y_member = f"{split}/X_{split}.txt", f"{split}/y_{split}.txt"
        inputs = _parse_table(raw[x_member], har_input.label(x_member), FEATURES, np.float32)
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
        for member, md5 in RESPLIT_MD5.items()
    )
    return Parsed("UCI HAR re-split" if resplit else "UCI HAR", arrays)


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
    bad = np.flatnonzero((labels < 1) | (labels > CLASSES))
    if bad.size:
        row = int(bad[0])
        raise DataError(f"{label}: row {row + 1} has label {labels[row]}, expected 1 to {CLASSES}")
