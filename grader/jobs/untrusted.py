"""Reading what student code produced, as the grader's own (possibly root) process.

Every file is opened without following symlinks, must be a regular file under a size cap, and
is parsed by a format that cannot run code (JSON, `.npy` without pickle, safetensors).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save_file as save_safetensors

from grader.core.files import megabytes
from grader.protocol import PROGRESS_BYTES, REPORT_BYTES, ChildReport, Progress

BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


class UntrustedFileError(Exception):
    """A child's output is missing, oversized, a link, or malformed; graded as `invalid`."""


@dataclass(frozen=True)
class Weights:
    path: Path
    sha256: str
    # Counted by the grader from this file; None for a pickle (.pt) the grader never opens.
    params: int | None


def read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UntrustedFileError(f"{path.name} was not written") from None
    except OSError as exc:
        raise UntrustedFileError(
            f"{path.name} cannot be opened ({exc.strerror}); links are not accepted"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFileError(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise UntrustedFileError(
                f"{path.name} is {megabytes(info.st_size)}, over the {megabytes(max_bytes)} limit"
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)


def read_report(path: Path) -> ChildReport | None:
    """The child's own account of how it went, or None if it left none we can trust."""
    try:
        return ChildReport.parse(json.loads(read_bytes(path, REPORT_BYTES)))
    except (UntrustedFileError, ValueError, RecursionError):
        return None


def read_progress(path: Path) -> Progress | None:
    """Where the child said it was; None if it left nothing we can read."""
    try:
        return Progress.parse(json.loads(read_bytes(path, PROGRESS_BYTES)))
    except (UntrustedFileError, ValueError, RecursionError):
        return None


def read_scores(path: Path, rows: int, classes: int) -> np.ndarray:
    """Class scores of shape (rows, classes), finite floats; returns the predicted classes."""
    raw = read_bytes(path, rows * classes * 8 + 4096)
    try:
        scores = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # numpy reports malformed files in many ways
        raise UntrustedFileError(f"{path.name} is not a valid .npy array ({exc})") from None
    if not isinstance(scores, np.ndarray):
        raise UntrustedFileError(f"{path.name} is not a single .npy array")
    if scores.shape != (rows, classes):
        raise UntrustedFileError(
            f"predictions have shape {scores.shape}, expected ({rows}, {classes})"
        )
    if scores.dtype.kind != "f":
        raise UntrustedFileError(f"predictions have dtype {scores.dtype}, expected floats")
    if not np.isfinite(scores).all():
        raise UntrustedFileError("the model produced NaN or infinite outputs")
    predicted: np.ndarray = scores.argmax(axis=1)
    return predicted


def sanitize_weights(source: Path, dest: Path, max_bytes: int) -> Weights:
    """Re-write a safetensors file with tensors only (no metadata to smuggle data through)."""
    raw = read_bytes(source, max_bytes)
    try:
        tensors = load_safetensors(raw)
    except Exception as exc:  # the parser reports header bombs and truncation its own ways
        raise UntrustedFileError(
            f"{source.name} is not a valid safetensors file "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    if not tensors:
        raise UntrustedFileError(f"{source.name} holds no tensors")
    save_safetensors(tensors, str(dest))
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    params = sum(
        int(t.size)
        for name, t in tensors.items()
        if t.dtype.kind == "f" and not name.endswith(BUFFER_SUFFIXES)
    )
    return Weights(dest, digest, params)
