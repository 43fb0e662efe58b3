from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.data import forbid_network, git_blob_id, write_tiny_har, write_tiny_mnist

from grader.data import cache, fetch, har, mnist, registry
from grader.data.cache import PreparedData
from grader.data.errors import DataError
from grader.data.registry import prepare

HAR_TRAIN, HAR_TEST = 30, 12
MNIST_TRAIN, MNIST_TEST = 20, 10


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_network(monkeypatch)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def tiny_mnist(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(mnist, "MD5", write_tiny_mnist(data_dir, MNIST_TRAIN, MNIST_TEST))
    return data_dir / "MNIST" / "raw"


@pytest.fixture
def har_folder(data_dir: Path) -> Path:
    return write_tiny_har(data_dir, HAR_TRAIN, HAR_TEST)


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Wrap module.<name> so the test can see how often the raw files were parsed."""
    calls: list[int] = []
    original: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def parse_naively(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()])


# --- MNIST -----------------------------------------------------------------------------


def test_mnist_arrays(tiny_mnist: Path, data_dir: Path, cache_dir: Path) -> None:
    prepared = prepare("mnist", data_dir, cache_dir, download=False)
    assert prepared.name == "mnist"
    assert prepared.description == f"MNIST ({MNIST_TRAIN} train / {MNIST_TEST} test)"
    assert (prepared.train_size, prepared.test_size) == (MNIST_TRAIN, MNIST_TEST)
    for prefix, count in (("train", MNIST_TRAIN), ("test", MNIST_TEST)):
        inputs = prepared.load(f"{prefix}_inputs")
        labels = prepared.load(f"{prefix}_labels")
        assert inputs.shape == (count, 1, 28, 28) and inputs.dtype == np.uint8
        assert labels.shape == (count,) and labels.dtype == np.int64
        np.testing.assert_array_equal(labels, np.arange(count) % 10)
        assert not inputs.flags.writeable


def test_mnist_pixels_match_idx_file(tiny_mnist: Path, data_dir: Path, cache_dir: Path) -> None:
    raw = gzip.decompress((tiny_mnist / "t10k-images-idx3-ubyte.gz").read_bytes())
    expected = np.frombuffer(raw[16:], dtype=np.uint8).reshape(MNIST_TEST, 1, 28, 28)
    prepared = prepare("mnist", data_dir, cache_dir, download=False)
    np.testing.assert_array_equal(prepared.load("test_inputs"), expected)


def test_mnist_missing_files(data_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        prepare("mnist", data_dir, cache_dir, download=False)
    assert str(caught.value) == (
        "MNIST files missing: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in {data_dir}/MNIST/raw/"
    )


def test_mnist_corrupt_gz(tiny_mnist: Path, data_dir: Path, cache_dir: Path) -> None:
    broken = tiny_mnist / "train-images-idx3-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DataError) as caught:
        prepare("mnist", data_dir, cache_dir, download=False)
    assert str(caught.value) == (
        f"{data_dir}/MNIST/raw/train-images-idx3-ubyte.gz is corrupt (MD5 mismatch); "
        "replace it with the original file"
    )
    # A failed build leaves neither a cache entry nor its scratch folder behind.
    assert sorted(path.name for path in cache_dir.iterdir()) == ["mnist.lock"]


def test_mnist_default_md5s_are_torchvisions(
    tiny_mnist: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mnist, "MD5", None)
    with pytest.raises(DataError, match="is corrupt"):
        prepare("mnist", data_dir, cache_dir, download=False)


def serve_mnist_mirrors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two stand-in mirrors for torchvision's list: the first lacks the files, the second
    serves them from a local folder. Returns the URLs asked for, in order."""
    import torchvision

    served = tmp_path / "mirror" / "MNIST" / "raw"
    md5s = write_tiny_mnist(tmp_path / "mirror", MNIST_TRAIN, MNIST_TEST)
    asked: list[str] = []
    real_stream = fetch._stream

    def from_folder(url: str, part: Path, offline_hint: str) -> None:
        asked.append(url)
        source = served / url.rsplit("/", 1)[1]
        if not url.startswith("https://second.invalid/") or not source.is_file():
            real_stream(url, part, offline_hint)  # reaches urlopen, which the test replaced
        shutil.copyfile(source, part)

    def offline(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(fetch, "_stream", from_folder)
    monkeypatch.setattr(
        torchvision.datasets.MNIST, "mirrors", ["https://first.invalid/", "https://second.invalid/"]
    )
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", list(md5s.items()))
    monkeypatch.setattr(mnist, "MD5", md5s)
    return asked


def test_mnist_download_tries_each_mirror_and_checks_md5s(
    tmp_path: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = serve_mnist_mirrors(tmp_path, monkeypatch)
    prepared = prepare("mnist", data_dir, cache_dir)
    assert prepared.train_size == MNIST_TRAIN
    raw_dir = data_dir / "MNIST" / "raw"
    assert sorted(path.name for path in raw_dir.iterdir()) == sorted(mnist.FILES)
    assert asked == [f"https://{m}.invalid/{f}" for f in mnist.FILES for m in ("first", "second")]
    entry = prepared.public_dir.parent.name
    assert sorted(path.name for path in cache_dir.iterdir()) == [entry, "mnist.lock"]


def test_mnist_download_rejects_a_corrupt_file(
    tmp_path: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_mnist_mirrors(tmp_path, monkeypatch)
    monkeypatch.setattr(mnist, "MD5", {**mnist.MD5, mnist.FILES[2]: "0" * 32})  # type: ignore[dict-item]
    with pytest.raises(DataError) as caught:
        prepare("mnist", data_dir, cache_dir)
    assert str(caught.value).startswith(
        f"cannot download https://second.invalid/{mnist.FILES[2]} (md5 mismatch: got "
    )
    assert not (data_dir / "MNIST" / "raw").exists()  # nothing installed from a broken set


def test_mnist_download_failure_is_one_line(
    tmp_path: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_mnist_mirrors(tmp_path, monkeypatch)
    shutil.rmtree(tmp_path / "mirror")
    with pytest.raises(DataError) as caught:
        prepare("mnist", data_dir, cache_dir)
    assert str(caught.value) == (
        f"cannot download https://second.invalid/{mnist.FILES[0]} (no route to host); "
        f"put {', '.join(mnist.FILES)} in {data_dir}/MNIST/raw/"
    )
    assert not (data_dir / "MNIST" / "raw").exists()


# --- UCI HAR ---------------------------------------------------------------------------


def test_har_arrays(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    prepared = prepare("uci_har", data_dir, cache_dir, download=False)
    assert prepared.name == "uci_har"
    assert prepared.description == f"UCI HAR ({HAR_TRAIN} train / {HAR_TEST} test)"
    for prefix, count in (("train", HAR_TRAIN), ("test", HAR_TEST)):
        inputs = prepared.load(f"{prefix}_inputs")
        labels = prepared.load(f"{prefix}_labels")
        assert inputs.shape == (count, 561) and inputs.dtype == np.float32
        assert labels.shape == (count,) and labels.dtype == np.int64
        np.testing.assert_array_equal(labels, np.arange(count) % 6)
        expected = parse_naively(har_folder / prefix / f"X_{prefix}.txt")
        np.testing.assert_array_equal(inputs, expected.astype(np.float32))


def test_har_zip_matches_folder(tmp_path: Path, cache_dir: Path) -> None:
    folder_data, zip_data = tmp_path / "folder", tmp_path / "zipped"
    write_tiny_har(folder_data, HAR_TRAIN, HAR_TEST)
    archive = write_tiny_har(zip_data, HAR_TRAIN, HAR_TEST, as_zip=True)
    assert sorted(path.name for path in archive.parent.iterdir()) == ["UCI HAR Dataset.zip"]
    from_folder = prepare("uci_har", folder_data, cache_dir, download=False)
    from_zip = prepare("uci_har", zip_data, cache_dir, download=False)
    assert from_zip.public_dir != from_folder.public_dir
    assert from_zip.checksum == from_folder.checksum
    assert from_zip.description == from_folder.description


def test_har_missing(data_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir, download=False)
    assert str(caught.value) == (
        "UCI HAR data missing: put the 'UCI HAR Dataset' folder or 'UCI HAR Dataset.zip' "
        f"in {data_dir}/UCI_HAR/"
    )


def test_har_incomplete_folder(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    (har_folder / "test" / "X_test.txt").unlink()
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir, download=False)
    assert str(caught.value) == (
        f"{har_folder}/test/X_test.txt is missing; put the 'UCI HAR Dataset' folder or "
        f"'UCI HAR Dataset.zip' in {data_dir}/UCI_HAR/"
    )


def test_har_short_row(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    x_train = har_folder / "train" / "X_train.txt"
    # Cut the file inside row 6, after its 200th 16-character field.
    x_train.write_bytes(x_train.read_bytes()[: 5 * (561 * 16 + 2) + 200 * 16])
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir, download=False)
    assert str(caught.value) == f"{x_train}: row 6 has 200 values, expected 561"


def test_har_row_count_mismatch(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    x_train = har_folder / "train" / "X_train.txt"
    x_train.write_bytes(b"".join(x_train.read_bytes().splitlines(keepends=True)[:5]))
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir, download=False)
    assert str(caught.value) == f"{x_train}: 5 rows but y_train.txt has {HAR_TRAIN}"


def test_har_truncated_zip_member(tmp_path: Path, cache_dir: Path) -> None:
    data_dir = tmp_path / "data"
    write_tiny_har(data_dir, HAR_TRAIN, HAR_TEST)
    x_test = data_dir / "UCI_HAR" / "UCI HAR Dataset" / "test" / "X_test.txt"
    x_test.write_bytes(x_test.read_bytes()[:-100])
    archive = data_dir / "UCI_HAR" / "UCI HAR Dataset.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted((data_dir / "UCI_HAR" / "UCI HAR Dataset").rglob("*.txt")):
            out.write(path, path.relative_to(data_dir / "UCI_HAR").as_posix())
    shutil.rmtree(data_dir / "UCI_HAR" / "UCI HAR Dataset")
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir, download=False)
    assert str(caught.value) == (
        f"{archive}/UCI HAR Dataset/test/X_test.txt: row {HAR_TEST} has 555 values, expected 561"
    )


def test_har_bad_label(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    y_test = har_folder / "test" / "y_test.txt"
    lines = y_test.read_text().splitlines()
    lines[3] = "7"
    y_test.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir, download=False)
    assert str(caught.value) == f"{y_test}: row 4 has label 7, expected 1 to 6"


def test_har_not_a_number(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    y_train = har_folder / "train" / "y_train.txt"
    y_train.write_text("1\nwalking\n" + "2\n" * (HAR_TRAIN - 2))
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir, download=False)
    assert str(caught.value) == (
        f"{y_train}: not all values are int64 numbers; replace it with the original file"
    )


def test_har_resplit_detected(
    har_folder: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resplit_md5 = {
        member: hashlib.md5((har_folder / member).read_bytes()).hexdigest()
        for member in ("train/y_train.txt", "test/y_test.txt")
    }
    monkeypatch.setattr(har, "RESPLIT_MD5", resplit_md5)
    prepared = prepare("uci_har", data_dir, cache_dir, download=False)
    assert prepared.description == f"UCI HAR re-split ({HAR_TRAIN} train / {HAR_TEST} test)"


def official_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """Serve a tiny stand-in for the official UCI download; return the requests made."""
    served = tmp_path / "served"
    inner = write_tiny_har(served, HAR_TRAIN, HAR_TEST, as_zip=True)
    outer = served / "download.zip"
    with zipfile.ZipFile(outer, "w") as out:
        out.write(inner, "UCI HAR Dataset.zip")
        out.writestr("UCI HAR Dataset.names", "dataset description\n")
    requests: list[tuple[str, Path]] = []

    def fake_download(url: str, dest: Path, **_kwargs: Any) -> Path:
        requests.append((url, dest))
        shutil.copyfile(outer, dest)
        return dest

    monkeypatch.setattr(fetch, "download", fake_download)
    return requests


def test_har_download_installs_inner_zip(
    tmp_path: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = official_download(tmp_path, monkeypatch)
    with zipfile.ZipFile(tmp_path / "served" / "UCI_HAR" / "UCI HAR Dataset.zip") as archive:
        blob_ids = {
            member: git_blob_id(archive.read(f"UCI HAR Dataset/{member}")) for member in har.FILES
        }
    monkeypatch.setattr(har, "BLOB_IDS", blob_ids)
    prepared = prepare("uci_har", data_dir, cache_dir)
    assert [url for url, _ in requests] == [har.URL]
    assert prepared.train_size == HAR_TRAIN
    assert sorted(p.name for p in (data_dir / "UCI_HAR").iterdir()) == ["UCI HAR Dataset.zip"]
    assert [p.name for p in cache_dir.iterdir() if not p.name.startswith("uci_har")] == []


def test_har_download_rejects_unofficial_files(
    tmp_path: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    official_download(tmp_path, monkeypatch)
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir)
    assert str(caught.value).startswith(
        "downloaded train/X_train.txt differs from the official file (git blob id "
    )
    assert str(caught.value).endswith(
        f"); put the 'UCI HAR Dataset' folder or 'UCI HAR Dataset.zip' in {data_dir}/UCI_HAR/"
    )
    assert not (data_dir / "UCI_HAR").exists()


def test_har_offline_download(
    data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*_args: object, **_kwargs: object) -> None:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as caught:
        prepare("uci_har", data_dir, cache_dir)
    assert str(caught.value) == (
        f"cannot download {har.URL} (no route to host); put the 'UCI HAR Dataset' "
        f"folder or 'UCI HAR Dataset.zip' in {data_dir}/UCI_HAR/"
    )


# --- cache -----------------------------------------------------------------------------


def test_warm_cache_skips_parsing(
    har_folder: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = count_calls(monkeypatch, har, "_parse")
    first = prepare("uci_har", data_dir, cache_dir, download=False)
    second = prepare("uci_har", data_dir, cache_dir, download=False)
    assert len(parses) == 1
    assert second == first


def test_changed_raw_file_rebuilds(
    har_folder: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = count_calls(monkeypatch, har, "_parse")
    first = prepare("uci_har", data_dir, cache_dir, download=False)
    y_train = har_folder / "train" / "y_train.txt"
    y_train.write_text("6\n" * HAR_TRAIN)
    second = prepare("uci_har", data_dir, cache_dir, download=False)
    assert len(parses) == 2
    assert second.checksum != first.checksum
    assert set(second.load("train_labels")) == {5}


def test_warm_mnist_cache_skips_torchvision(
    tiny_mnist: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = count_calls(monkeypatch, mnist, "_build")
    first = prepare("mnist", data_dir, cache_dir, download=False)
    assert prepare("mnist", data_dir, cache_dir, download=False) == first
    assert len(builds) == 1


def test_checksum_is_stable(har_folder: Path, data_dir: Path, tmp_path: Path) -> None:
    first = prepare("uci_har", data_dir, tmp_path / "cache-a", download=False)
    second = prepare("uci_har", data_dir, tmp_path / "cache-b", download=False)
    assert first.checksum == second.checksum
    assert len(first.checksum) == 64


def test_checksum_covers_arrays(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    prepared = prepare("uci_har", data_dir, cache_dir, download=False)
    digest = hashlib.sha256()
    for part in cache.PARTS:
        array = np.ascontiguousarray(prepared.load(part))
        digest.update(f"{part}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    assert prepared.checksum == digest.hexdigest()


def test_permissions(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    prepared = prepare("uci_har", data_dir, cache_dir, download=False)
    assert mode(prepared.public_dir) == 0o755
    assert mode(prepared.private_dir) == 0o700
    assert sorted(p.name for p in prepared.public_dir.iterdir()) == [
        "test_inputs.npy",
        "train_inputs.npy",
        "train_labels.npy",
    ]
    assert {mode(p) for p in prepared.public_dir.iterdir()} == {0o644}
    assert [p.name for p in prepared.private_dir.iterdir()] == ["test_labels.npy"]
    assert mode(prepared.private_dir / "test_labels.npy") == 0o600


def test_cache_layout(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    prepared = prepare("uci_har", data_dir, cache_dir, download=False)
    entry = prepared.public_dir.parent
    assert entry.parent == cache_dir
    assert entry.name.startswith("uci_har-")
    assert prepared.private_dir.parent == entry
    assert sorted(p.name for p in cache_dir.iterdir()) == [entry.name, "uci_har.lock"]
    assert str(cache_dir) not in (entry / "manifest.json").read_text()


@pytest.mark.parametrize("damage", ["manifest.json", "private/test_labels.npy"])
def test_damaged_entry_is_rebuilt(
    har_folder: Path, data_dir: Path, cache_dir: Path, damage: str
) -> None:
    first = prepare("uci_har", data_dir, cache_dir, download=False)
    (first.public_dir.parent / damage).unlink()
    assert prepare("uci_har", data_dir, cache_dir, download=False) == first


def test_crashed_build_leftovers_are_removed(
    har_folder: Path, data_dir: Path, cache_dir: Path
) -> None:
    leftover = cache_dir / ".uci_har-crashed.tmp"
    (leftover / "public").mkdir(parents=True)
    prepared = prepare("uci_har", data_dir, cache_dir, download=False)
    assert not leftover.exists()
    assert prepared.load("train_labels").shape == (HAR_TRAIN,)


def test_concurrent_callers_build_once(
    har_folder: Path, data_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = count_calls(monkeypatch, har, "_parse")
    results: list[PreparedData] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(prepare("uci_har", data_dir, cache_dir, download=False))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(parses) == 1
    assert len({r.checksum for r in results}) == 1 and len(results) == 4


# --- API edges -------------------------------------------------------------------------


def test_unknown_part(har_folder: Path, data_dir: Path, cache_dir: Path) -> None:
    prepared = prepare("uci_har", data_dir, cache_dir, download=False)
    with pytest.raises(ValueError, match="unknown part 'labels'"):
        prepared.load("labels")


def test_unknown_dataset(data_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        prepare("cifar10", data_dir, cache_dir)
    assert str(caught.value) == "unknown dataset 'cifar10'; expected one of mnist, uci_har"


def test_default_dirs_follow_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "c"))
    assert registry.default_data_dir() == tmp_path / "d"
    assert registry.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GRADER_DATA_DIR")
    monkeypatch.delenv("GRADER_CACHE_DIR")
    assert "course-grader" in registry.default_data_dir().parts
    assert "course-grader" in registry.default_cache_dir().parts


# --- real data -------------------------------------------------------------------------


@pytest.fixture
def real_data_dir() -> Path:
    value = os.environ.get("GRADER_DATA_DIR")
    if not value:
        pytest.skip("GRADER_DATA_DIR is not set; point it at the folder with MNIST/ and UCI_HAR/")
    return Path(value)


def prepare_twice(name: str, data_dir: Path, cache_dir: Path) -> tuple[PreparedData, float]:
    cold = prepare(name, data_dir, cache_dir, download=False)
    start = time.perf_counter()
    warm = prepare(name, data_dir, cache_dir, download=False)
    elapsed = time.perf_counter() - start
    assert warm == cold
    return warm, elapsed


@pytest.mark.slow
def test_real_mnist(real_data_dir: Path, tmp_path: Path) -> None:
    prepared, warm_seconds = prepare_twice("mnist", real_data_dir, tmp_path)
    assert (prepared.train_size, prepared.test_size) == (60000, 10000)
    assert prepared.description == "MNIST (60000 train / 10000 test)"
    assert prepared.load("train_inputs").shape == (60000, 1, 28, 28)
    assert prepared.load("test_inputs").dtype == np.uint8
    labels = prepared.load("train_labels")
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(10))
    assert warm_seconds < 1.0


@pytest.mark.slow
def test_real_har(real_data_dir: Path, tmp_path: Path) -> None:
    prepared, warm_seconds = prepare_twice("uci_har", real_data_dir, tmp_path)
    assert (prepared.train_size, prepared.test_size) == (5219, 2133)
    assert "re-split" in prepared.description
    assert prepared.load("train_inputs").shape == (5219, 561)
    assert prepared.load("test_inputs").dtype == np.float32
    labels = prepared.load("test_labels")
    assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(6))
    assert warm_seconds < 1.0
