"""MNIST from its four original gzipped IDX files, parsed by torchvision after an MD5 check."""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np

from grader.data import fetch
from grader.data.cache import Parsed, PreparedData, cached, install
from grader.data.errors import DataError

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# Expected MD5 per file; None means torchvision's own list. Tests swap in their tiny files'.
MD5: dict[str, str] | None = None


def prepare(data_dir: Path, cache_dir: Path, download: bool) -> PreparedData:
    raw_dir = data_dir / "MNIST" / "raw"
    sources = [raw_dir / file_name for file_name in FILES]
    if not all(source.is_file() for source in sources):
        if not download:
            raise DataError(f"MNIST files missing: {_hint(raw_dir)}")
        _download(raw_dir, cache_dir)
    return cached("mnist", data_dir, sources, cache_dir, lambda staging: _build(raw_dir, staging))


def _hint(raw_dir: Path) -> str:
    return f"put {', '.join(FILES)} in {raw_dir}/"


def _download(raw_dir: Path, cache_dir: Path) -> None:
    """Each missing file from the first of torchvision's mirrors that serves it intact."""
    import torchvision  # deferred: importing it takes seconds and a warm cache never needs it

    mirrors, expected = torchvision.datasets.MNIST.mirrors, _md5()
    with tempfile.TemporaryDirectory(dir=cache_dir) as staging:
        fetched = []
        for file_name in FILES:
            if (raw_dir / file_name).is_file():
                continue
            failures = []
            for mirror in mirrors:
                try:
                    fetched.append(
                        fetch.download(
                            mirror + file_name,
                            Path(staging) / file_name,
                            md5=expected[file_name],
                            offline_hint=_hint(raw_dir),
                        )
                    )
                    break
                except fetch.FetchError as exc:
                    failures.append(str(exc))
            else:
                raise DataError(failures[-1])  # names the last mirror, the reason and the fix
        # Only once every file arrived: a half-downloaded set would look complete to no one.
        for path in fetched:
            install(path, raw_dir / path.name)


def _md5() -> dict[str, str]:
    if MD5 is not None:
        return MD5
    import torchvision

    return dict(torchvision.datasets.MNIST.resources)


def _build(raw_dir: Path, staging: Path) -> Parsed:
    import torchvision

    expected = _md5()
    # torchvision only reads uncompressed files below <root>/MNIST/raw, and raw_dir may be
    # read-only, so the verified archives are unpacked into a throwaway root.
    staged_raw = staging / "MNIST" / "raw"
    staged_raw.mkdir(parents=True)
    for file_name in FILES:
        source = raw_dir / file_name
        if fetch.file_digest(source, "md5") != expected[file_name]:
            raise DataError(
                f"{source} is corrupt (MD5 mismatch); replace it with the original file"
            )
        with gzip.open(source) as packed, (staged_raw / source.stem).open("wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
    train = torchvision.datasets.MNIST(staging, train=True, download=False)
    test = torchvision.datasets.MNIST(staging, train=False, download=False)
    return Parsed(
        "MNIST",
        {
            "train_inputs": train.data.numpy()[:, None],
            "train_labels": train.targets.numpy().astype(np.int64),
            "test_inputs": test.data.numpy()[:, None],
            "test_labels": test.targets.numpy().astype(np.int64),
        },
    )
