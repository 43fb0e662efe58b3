"""Private hold-out sets: rows no student saw, scored in the blind evaluation beside the test set.

A model that memorised the public test answers scores on a hold-out only what it learned. Three
sources, combined when a spec names several (see core/spec.py's Holdout):
- an instructor's folder in the dataset's original format: for MNIST `t10k-images-idx3-ubyte`
  and `t10k-labels-idx1-ubyte` (gzipped or not); for UCI HAR `test/X_test.txt` and
  `test/y_test.txt`;
- QMNIST's extra test digits for MNIST (data/qmnist.py);
- a seeded fraction of the training set, carved out of what students train on (carve below).
Labels stay in the grader's memory: they never reach a job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.core.files import atomic_path
from grader.data import har
from grader.data.cache import CACHE_FORMAT, Parsed, PreparedData, derived
from grader.data.errors import DataError
from grader.data.idx import read_idx

MNIST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
HAR_FILES = ("test/X_test.txt", "test/y_test.txt")
_CARVED_ROWS = "holdout_rows"  # the carved entry's record of which training rows it kept out


@dataclass(frozen=True)
class HoldoutData:
    inputs: np.ndarray
    labels: np.ndarray
    checksum: str  # part of the reuse key: a new hold-out regrades every row
    description: str  # what it is, as rows and boards name it ("QMNIST's 50,000 ...")


def holdout_data(
    inputs: np.ndarray, labels: np.ndarray, classes: int, description: str, where: str
) -> HoldoutData:
    """A checked hold-out set; where names its files in errors."""
    if len(inputs) != len(labels) or not len(labels):
        raise DataError(f"hold-out in {where}: {len(inputs)} inputs but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= classes:
        raise DataError(f"hold-out in {where}: labels outside 0 to {classes - 1}")
    digest = hashlib.sha256(np.ascontiguousarray(inputs).data)
    digest.update(np.ascontiguousarray(labels).data)
    return HoldoutData(inputs, labels, digest.hexdigest(), description)


def load_holdout(dataset: str, folder: Path) -> HoldoutData:
    """An instructor's own hold-out files."""
    if not folder.is_dir():
        raise DataError(f"hold-out folder {folder} does not exist")
    if dataset == "mnist":
        images, labels = (read_idx(_find(folder, name)) for name in MNIST_FILES)
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
    return holdout_data(
        inputs, labels, classes, f"the instructor's {len(labels):,} private rows", str(folder)
    )


def carve(
    data: PreparedData, fraction: float, seed: int, cache_dir: Path
) -> tuple[PreparedData, HoldoutData]:
    """Keep a seeded, class-stratified fraction of data's training rows out of what students
    (and baselines) train on: the entry they get instead, and those rows as a hold-out.

    The kept-out rows are recorded in the new entry, so a later library version that would
    split differently can never put them back into training."""
    key = hashlib.sha256(json.dumps([CACHE_FORMAT, data.checksum, fraction, seed]).encode())

    def build(_staging: Path) -> Parsed:
        return _split(data, fraction, seed)

    trained = derived(f"{data.name}-carved", key.hexdigest()[:16], cache_dir, build)
    rows, train_labels = trained.private(_CARVED_ROWS), data.load("train_labels")
    inputs, labels = data.load("train_inputs")[rows], train_labels[rows]
    share = f"{len(rows):,} training rows ({fraction * 100:g}%, seed {seed}) kept from students"
    classes = int(train_labels.max()) + 1
    return trained, holdout_data(inputs, labels, classes, share, trained.title)


def combine(parts: list[HoldoutData]) -> HoldoutData | None:
    """One hold-out of several sources, in order; None for none."""
    if len(parts) <= 1:
        return parts[0] if parts else None
    digest = hashlib.sha256("+".join(part.checksum for part in parts).encode())
    return HoldoutData(
        np.concatenate([part.inputs for part in parts]),
        np.concatenate([part.labels for part in parts]),
        digest.hexdigest(),
        " and ".join(part.description for part in parts),
    )


@dataclass(frozen=True)
class StagedHoldout:
    """A hold-out saved where another machine reads it (a Slurm node): a path, not arrays."""

    path: Path
    checksum: str  # the head's, which results are keyed by
    description: str

    def load(self) -> HoldoutData:
        with np.load(self.path) as saved:
            return HoldoutData(saved["inputs"], saved["labels"], self.checksum, self.description)


def stage(holdout: HoldoutData, folder: Path) -> StagedHoldout:
    """Save the set in folder (private, shared with the nodes), once per set."""
    path = folder / f"holdout-{holdout.checksum[:16]}.npz"
    if not path.exists():
        with atomic_path(path, mode=0o600) as temp, temp.open("wb") as handle:
            np.savez(handle, inputs=holdout.inputs, labels=holdout.labels)
    return StagedHoldout(path, holdout.checksum, holdout.description)


def _split(data: PreparedData, fraction: float, seed: int) -> Parsed:
    from sklearn.model_selection import train_test_split  # deferred: seconds to import

    labels = data.load("train_labels")
    kept, held = train_test_split(
        np.arange(len(labels)), test_size=fraction, random_state=seed, stratify=labels
    )
    kept, held = np.sort(kept), np.sort(held)
    arrays = {
        "train_inputs": data.load("train_inputs")[kept],
        "train_labels": labels[kept],
        "test_inputs": np.asarray(data.load("test_inputs")),
        "test_labels": np.asarray(data.load("test_labels")),
    }
    title = f"{data.title} less {len(held):,} hold-out rows ({fraction * 100:g}%, seed {seed})"
    return Parsed(title, arrays, {_CARVED_ROWS: held})


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"hold-out file {folder / name} (or .gz) is missing")
