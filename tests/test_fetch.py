from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.data import forbid_network

from grader.data import fetch

HINT = "put data.bin in the data folder"
PAYLOAD = b"course-grader test payload\n" * 1000


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_network(monkeypatch)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "served" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("algorithm", ["md5", "sha256", "sha1"])
def test_file_digest_matches_hashlib(source: Path, algorithm: str) -> None:
    assert fetch.file_digest(source, algorithm) == hashlib.new(algorithm, PAYLOAD).hexdigest()


def test_download_with_matching_checksums(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "data.bin"
    result = fetch.download(
        source.as_uri(),
        dest,
        md5=hashlib.md5(PAYLOAD).hexdigest(),
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        offline_hint=HINT,
    )
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == ["data.bin"]


def test_download_without_checksum(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "data.bin"
    fetch.download(source.as_uri(), dest, offline_hint=HINT)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_checksum_mismatch_leaves_nothing(source: Path, tmp_path: Path, algorithm: str) -> None:
    dest = tmp_path / "out" / "data.bin"
    wrong = "0" * len(hashlib.new(algorithm).hexdigest())
    actual = hashlib.new(algorithm, PAYLOAD).hexdigest()
    with pytest.raises(fetch.FetchError) as caught:
        fetch.download(source.as_uri(), dest, offline_hint=HINT, **{algorithm: wrong})
    assert str(caught.value) == (
        f"cannot download {source.as_uri()} "
        f"({algorithm} mismatch: got {actual}, expected {wrong}); {HINT}"
    )
    assert leftovers(dest.parent) == []


def test_offline_message_is_pinned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "data.bin"
    with pytest.raises(fetch.FetchError) as caught:
        fetch.download("https://example.invalid/data.bin", dest, offline_hint=HINT)
    assert str(caught.value) == (
        "cannot download https://example.invalid/data.bin (network is unreachable); "
        "put data.bin in the data folder"
    )
    assert leftovers(tmp_path) == []


def test_http_error_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = "https://example.invalid/data.bin"

    def not_found(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.HTTPError(url, 404, "Not Found", None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    with pytest.raises(fetch.FetchError, match=r"\(HTTP Error 404: Not Found\); "):
        fetch.download(url, tmp_path / "data.bin", offline_hint=HINT)


def test_missing_file_url_is_one_line(tmp_path: Path) -> None:
    url = (tmp_path / "absent.bin").as_uri()
    with pytest.raises(fetch.FetchError) as caught:
        fetch.download(url, tmp_path / "data.bin", offline_hint=HINT)
    message = str(caught.value)
    assert message.startswith(f"cannot download {url} (")
    assert message.endswith(f"); {HINT}")
    assert "\n" not in message
    assert leftovers(tmp_path) == []


class _DroppedConnection(io.BytesIO):
    """A response that dies halfway through the body."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() > 0:
            raise ConnectionResetError("connection reset by peer")
        return super().read(10)


def test_interrupted_download_keeps_old_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"previous copy")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *_a, **_k: _DroppedConnection(PAYLOAD))
    with pytest.raises(fetch.FetchError) as caught:
        fetch.download("https://example.invalid/data.bin", dest, offline_hint=HINT)
    assert "(connection reset by peer)" in str(caught.value)
    assert dest.read_bytes() == b"previous copy"
    assert leftovers(tmp_path) == ["data.bin"]
