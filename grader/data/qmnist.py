"""QMNIST's 50,000 extra MNIST test digits (Yadav & Bottou, 2019): MNIST's default hold-out.

QMNIST reconstructed MNIST's test set from the same NIST source, 60,000 digits of which the
first 10,000 are MNIST's own test set; the other 50,000 (torchvision's "test50k") were never
published as MNIST, so a submission that memorised MNIST's public test answers scores on them
only what its model learned. The files sit in <data dir>/QMNIST/raw/ as QMNIST publishes them
(torchvision's download puts them there too); `grader data mnist` downloads them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from grader.data import fetch
from grader.data.cache import install
from grader.data.errors import DataError
from grader.data.holdout import HoldoutData, holdout_data
from grader.data.idx import read_idx

IMAGES, LABELS = "qmnist-test-images-idx3-ubyte.gz", "qmnist-test-labels-idx2-int.gz"
FILES = (IMAGES, LABELS)
URL = "https://raw.githubusercontent.com/facebookresearch/qmnist/master/"
MNIST_ROWS = 10_000  # QMNIST's first test rows are MNIST's test set again
# Expected MD5 per file; None means torchvision's own list. Tests swap in their tiny files'.
MD5: dict[str, str] | None = None


def raw_dir(data_dir: Path) -> Path:
    return data_dir / "QMNIST" / "raw"


def present(data_dir: Path) -> bool:
    return all((raw_dir(data_dir) / name).is_file() for name in FILES)


def absent_note(data_dir: Path) -> str:
    """The one line that says MNIST is graded without QMNIST's digits, and how to get them."""
    return (
        f"QMNIST's extra test digits are not in {raw_dir(data_dir)}: MNIST is graded without "
        "that private hold-out (`grader data mnist` downloads them)"
    )


def download(data_dir: Path, cache_dir: Path) -> None:
    """Fetch the missing files, each checked against torchvision's MD5 before it is kept."""
    folder, expected = raw_dir(data_dir), _md5()
    hint = f"put {', '.join(FILES)} in {folder}/, or pass --offline to go on without them"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as staging:
        fetched = []
        for name in FILES:
            if not (folder / name).is_file():
                try:
                    got = fetch.download(
                        URL + name, Path(staging) / name, md5=expected[name], offline_hint=hint
                    )
                except fetch.FetchError as exc:
                    raise DataError(str(exc)) from exc
                fetched.append(got)
        for path in fetched:
            install(path, folder / path.name)


def load(data_dir: Path) -> HoldoutData:
    """The 50,000 digits after MNIST's own 10,000, with their class labels."""
    folder, expected = raw_dir(data_dir), _md5()
    for name in FILES:
        path = folder / name
        if fetch.file_digest(path, "md5") != expected[name]:
            raise DataError(f"{path} is corrupt (MD5 mismatch); replace it with QMNIST's file")
    images, labels = read_idx(folder / IMAGES), read_idx(folder / LABELS)
    if images.ndim != 3 or labels.ndim != 2 or len(images) != len(labels):
        raise DataError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    if len(images) <= MNIST_ROWS:
        raise DataError(f"{folder}: {len(images)} test digits, no more than MNIST's own")
    inputs = images[MNIST_ROWS:, None]
    classes = labels[MNIST_ROWS:, 0].astype(np.int64)  # the other columns say where it came from
    return holdout_data(
        inputs, classes, 10, f"QMNIST's {len(classes):,} extra test digits", str(folder)
    )


def _md5() -> dict[str, str]:
    if MD5 is not None:
        return MD5
    import torchvision  # deferred: importing it takes seconds

    return {
        url.rsplit("/", 1)[1]: md5 for url, md5 in torchvision.datasets.QMNIST.resources["test"]
    }
