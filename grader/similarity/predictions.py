"""A model's predicted test classes, packed for the store: one text per graded seed.

A class index is one byte (two where a spec has more than 256 classes); zlib takes MNIST's
10,000 to a few kilobytes, and base64 makes that text a JSON column holds.
"""

from __future__ import annotations

import base64
import zlib

import numpy as np

_WIDTHS = {1: np.uint8, 2: np.uint16}


def pack(predicted: np.ndarray) -> str:
    """The classes of one seed's test predictions, as stored."""
    classes = np.asarray(predicted, dtype=np.int64)
    wide = classes.size and int(classes.max()) > np.iinfo(np.uint8).max
    raw = classes.astype(np.uint16 if wide else np.uint8).tobytes()
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def unpack(packed: str, size: int) -> np.ndarray | None:
    """One seed's classes; None when the text is not `size` packed classes (a row from an
    older or damaged store is then compared by its code alone)."""
    try:
        raw = zlib.decompress(base64.b64decode(packed, validate=True))
    except (ValueError, zlib.error):
        return None
    width = len(raw) // size if size else 0
    if width not in _WIDTHS or width * size != len(raw):
        return None
    return np.frombuffer(raw, dtype=_WIDTHS[width]).astype(np.int64)
