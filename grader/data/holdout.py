"""An instructor's private hold-out set, read from a folder in the dataset's original format.

For MNIST, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (gzipped or not), e.g.
QMNIST's 50,000 extra test digits written as IDX; for UCI HAR, `test/X_test.txt` and
`test/y_test.txt`. Read once per run into the grader's memory: its labels never reach a job.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.core.files import atomic_path
from grader.data import har
from grader.data.errors import DataError

MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
HAR_FILES = ("test/X_test.txt", "test/y_test.txt")
_IDX_UBYTE = 0x08


@dataclass(frozen=True)
class HoldoutData:
    inputs: np.ndarray
    labels: np.ndarray
    checksum: str  # part of the reuse key: new hold-out files regrade every row


def load_holdout(dataset: str, folder: Path) -> HoldoutData:
    if not folder.is_dir():
        raise DataError(f"hold-out folder {folder} does not exist")
    if dataset == "mnist":
        images, labels = (_read_idx(_find(folder, name)) for name in MNIST_FILES)
        inputs, labels = images[:, None], labels.astype(np.int64)
        classes = 10
    else:
        x_path, y_path = (folder / name for name in HAR_FILES)
        for path in (x_path, y_path):
            if not path.is_file():
                raise DataError(f"hold-out file {path} is missing")
        inputs = har._parse_table(x_path.read_bytes(), str(x_path), har.FEATURES, np.float32)
        labels = har._parse_table(y_path.read_bytes(), str(y_path), 1, np.int64)[:, 0]
        har._check_labels(labels, str(y_path))
        labels, classes = labels - 1, har.CLASSES
    _check(inputs, labels, classes, folder)
    digest = hashlib.sha256(np.ascontiguousarray(inputs).data)
    digest.update(np.ascontiguousarray(labels).data)
    return HoldoutData(inputs, labels, digest.hexdigest())


def save_staged(holdout: HoldoutData, folder: Path) -> Path:
    """Write the set where Slurm nodes read it (a private shared folder); return its path."""
    path = folder / f"holdout-{holdout.checksum[:16]}.npz"
    if not path.exists():
        with atomic_path(path, mode=0o600) as temp, temp.open("wb") as handle:
            np.savez(handle, inputs=holdout.inputs, labels=holdout.labels)
    return path


def load_staged(path: Path, checksum: str) -> HoldoutData:
    """The set save_staged wrote, under the checksum the head keys results by."""
    with np.load(path) as saved:
        return HoldoutData(saved["inputs"], saved["labels"], checksum)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"hold-out file {folder / name} (or .gz) is missing")


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes: two zero bytes, the type, the rank, big-endian sizes."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _IDX_UBYTE:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    rank = raw[3]
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=rank, offset=4))
    body = np.frombuffer(raw, np.uint8, offset=4 + 4 * rank)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} holds {body.size} values, its header says {shape}")
    return body.reshape(shape).copy()


def _check(inputs: np.ndarray, labels: np.ndarray, classes: int, folder: Path) -> None:
    if len(inputs) != len(labels) or not len(labels):
        raise DataError(f"hold-out in {folder}: {len(inputs)} inputs but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= classes:
        raise DataError(f"hold-out in {folder}: labels outside 0 to {classes - 1}")
