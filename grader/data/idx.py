"""IDX files (LeCun's format for MNIST, and QMNIST's): a magic number, big-endian sizes, values.

The magic is two zero bytes, a type byte and the rank; the sizes are big-endian 32-bit counts.
Gzipped files (".gz") are read as they are published.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from grader.data.errors import DataError

# The value types MNIST and QMNIST use: MNIST's images and labels, QMNIST's label columns.
_TYPES: dict[int, np.dtype[Any]] = {0x08: np.dtype(np.uint8), 0x0C: np.dtype(">i4")}


def read_idx(path: Path) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path} cannot be read ({exc}); replace it with the original file"
        ) from exc
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _TYPES:
        raise DataError(f"{path} is not an IDX file of unsigned bytes or 32-bit integers")
    dtype, rank = _TYPES[raw[2]], raw[3]
    if len(raw) < 4 + 4 * rank:
        raise DataError(f"{path} ends inside its header")
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=rank, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - 4 - 4 * rank != expected:
        raise DataError(
            f"{path} holds {len(raw) - 4 - 4 * rank} bytes of values, its header says {shape}"
        )
    body = np.frombuffer(raw, dtype, offset=4 + 4 * rank)
    return body.reshape(shape).astype(dtype.newbyteorder("="))
