"""Downloads: the only module of the package that opens network connections."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from grader.core.errors import UserError

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60


class FetchError(UserError):
    """A download failed; the message is one line meant for the user."""


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes, read in chunks so large files never sit in memory."""
    with path.open("rb") as stream:
        # MD5 only guards against corrupt copies here; FIPS builds refuse it unless told so.
        digest = hashlib.file_digest(stream, lambda: hashlib.new(algorithm, usedforsecurity=False))
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    offline_hint: str,
) -> Path:
    """Fetch url into dest; dest appears only once complete and matching the given checksums."""
    part = dest.with_suffix(dest.suffix + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        _stream(url, part, offline_hint)
        for algorithm, expected in (("md5", md5), ("sha256", sha256)):
            if expected is not None:
                _verify(url, part, algorithm, expected, offline_hint)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _stream(url: str, part: Path, offline_hint: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, part.open("wb") as out:
            shutil.copyfileobj(response, out, _CHUNK_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"cannot download {url} ({_reason(exc)}); {offline_hint}") from exc


def _verify(url: str, part: Path, algorithm: str, expected: str, offline_hint: str) -> None:
    actual = file_digest(part, algorithm)
    if actual != expected.lower():
        reason = f"{algorithm} mismatch: got {actual}, expected {expected}"
        raise FetchError(f"cannot download {url} ({reason}); {offline_hint}")


def _reason(exc: BaseException) -> str:
    # URLError wraps the interesting error (DNS failure, refused connection) in .reason;
    # HTTPError is a URLError whose own text ("HTTP Error 404: Not Found") is the better one.
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc_text = str(exc.reason)
    else:
        exc_text = str(exc) or type(exc).__name__
    return " ".join(exc_text.split())
