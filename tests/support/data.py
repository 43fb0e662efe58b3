"""Tiny datasets in their original on-disk formats, and a guard for tests that must stay offline."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

HAR_FEATURES = 561
_IMAGE_MAGIC = 0x0803  # IDX: unsigned bytes, 3 dimensions
_LABEL_MAGIC = 0x0801  # IDX: unsigned bytes, 1 dimension
_INT_TABLE_MAGIC = 0x0C02  # IDX: 32-bit integers, 2 dimensions (QMNIST's labels)


def write_tiny_mnist(root: Path, n_train: int, n_test: int) -> dict[str, str]:
    """Write the four gzipped IDX files under root/MNIST/raw; return their MD5s by file name."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    md5s = {}
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        files = {
            f"{prefix}-images-idx3-ubyte.gz": struct.pack(">IIII", _IMAGE_MAGIC, count, 28, 28)
            + images.tobytes(),
            f"{prefix}-labels-idx1-ubyte.gz": struct.pack(">II", _LABEL_MAGIC, count)
            + labels.tobytes(),
        }
        for name, payload in files.items():
            path = raw / name
            # mtime=0 keeps the archives byte-identical from run to run.
            path.write_bytes(gzip.compress(payload, mtime=0))
            md5s[name] = hashlib.md5(path.read_bytes()).hexdigest()
    return md5s


def write_tiny_qmnist(root: Path, extra: int) -> dict[str, str]:
    """QMNIST's two test files under root/QMNIST/raw, in its real format: 10,000 blank digits
    (MNIST's own test set, which QMNIST repeats first) then `extra` digits of class i % 10;
    the labels file holds QMNIST's 8 int32 columns per digit, the class first. Returns MD5s."""
    raw = root / "QMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    count = 10_000 + extra
    images = np.zeros((count, 28, 28), np.uint8)
    images[10_000:] = np.random.default_rng(2).integers(0, 256, (extra, 28, 28), np.uint8)
    columns = np.zeros((count, 8), ">i4")
    columns[:, 0] = np.arange(count) % 10
    columns[:, 2] = 1000 + np.arange(count)  # a writer id, as QMNIST's third column has
    payloads = {
        "qmnist-test-images-idx3-ubyte.gz": struct.pack(">IIII", _IMAGE_MAGIC, count, 28, 28)
        + images.tobytes(),
        "qmnist-test-labels-idx2-int.gz": struct.pack(">III", _INT_TABLE_MAGIC, count, 8)
        + columns.tobytes(),
    }
    md5s = {}
    for name, payload in payloads.items():
        path = raw / name
        path.write_bytes(gzip.compress(payload, compresslevel=1, mtime=0))
        md5s[name] = hashlib.md5(path.read_bytes()).hexdigest()
    return md5s


def har_text(rows: np.ndarray) -> bytes:
    """Rows in the original X_*.txt layout: 16-character fields, 3-digit exponents, CRLF."""
    lines = ["".join(_har_field(value) for value in row) for row in rows]
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def _har_field(value: float) -> str:
    mantissa, exponent = f"{value:.7e}".split("e")
    return f"{mantissa}e{int(exponent):+04d}".rjust(16)


def write_tiny_har(root: Path, n_train: int, n_test: int, as_zip: bool = False) -> Path:
    """Write 'UCI HAR Dataset' (or its zip) under root/UCI_HAR; return the folder or zip path."""
    har_dir = root / "UCI_HAR"
    folder = har_dir / "UCI HAR Dataset"
    rng = np.random.default_rng(1)
    for split, count in (("train", n_train), ("test", n_test)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        features = rng.uniform(-1, 1, size=(count, HAR_FEATURES))
        labels = np.arange(count) % 6 + 1
        (folder / split / f"X_{split}.txt").write_bytes(har_text(features))
        (folder / split / f"y_{split}.txt").write_bytes(
            "".join(f"{label}\n" for label in labels).encode("ascii")
        )
    if not as_zip:
        return folder
    archive = har_dir / "UCI HAR Dataset.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, path.relative_to(har_dir).as_posix())
    shutil.rmtree(folder)
    return archive


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open a socket fail the test instead of reaching the internet."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
