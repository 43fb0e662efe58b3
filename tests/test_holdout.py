"""Private hold-outs: QMNIST's extra digits (MNIST's default), a carve of the training set, and
what runs, `grader data`, `grader sandbox` and the board say about them."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest
from support.cli import invoke
from support.data import forbid_network, write_tiny_mnist, write_tiny_qmnist
from support.paths import ASSIGNMENTS

from grader.core.spec import Holdout, Spec
from grader.data import mnist, qmnist
from grader.data.cache import PreparedData
from grader.data.errors import DataError
from grader.data.graded import for_spec
from grader.data.holdout import carve
from grader.data.idx import read_idx
from grader.data.registry import holdout_line, prepare_holdout
from grader.publish.board import build_board, render_html, write_board

EXTRA = 30  # tiny QMNIST digits past MNIST's own 10,000


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_network(monkeypatch)


@pytest.fixture
def qmnist_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "data"
    monkeypatch.setattr(qmnist, "MD5", write_tiny_qmnist(data_dir, EXTRA))
    return data_dir


# --- QMNIST ----------------------------------------------------------------------------------


def test_qmnist_holdout_is_the_digits_after_mnists_own(qmnist_dir: Path) -> None:
    holdout = qmnist.load(qmnist_dir)
    assert holdout.inputs.shape == (EXTRA, 1, 28, 28) and holdout.inputs.dtype == np.uint8
    assert holdout.inputs.any(axis=(1, 2, 3)).all()  # none of the 10,000 blank MNIST digits
    assert holdout.labels.tolist() == [(10_000 + i) % 10 for i in range(EXTRA)]
    assert holdout.labels.dtype == np.int64
    assert holdout.description == f"QMNIST's {EXTRA} extra test digits"
    assert qmnist.load(qmnist_dir).checksum == holdout.checksum


def test_qmnist_files_are_checked_against_their_md5(
    qmnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qmnist, "MD5", {**qmnist._md5(), qmnist.LABELS: "0" * 32})
    with pytest.raises(DataError) as caught:
        qmnist.load(qmnist_dir)
    assert str(caught.value) == (
        f"{qmnist_dir}/QMNIST/raw/{qmnist.LABELS} is corrupt (MD5 mismatch); replace it with "
        "QMNIST's file"
    )


def test_the_default_md5s_are_torchvisions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qmnist, "MD5", None)
    assert qmnist._md5() == {
        qmnist.IMAGES: "1394631089c404de565df7b7aeaf9412",
        qmnist.LABELS: "5b5b05890a5e13444e108efe57b788aa",
    }


def test_int32_idx_tables_read_as_qmnist_writes_them(tmp_path: Path) -> None:
    table = np.array([[7, -1, 65536], [0, 2, 3]], ">i4")
    path = tmp_path / "t.idx"
    path.write_bytes(struct.pack(">III", 0x0C02, 2, 3) + table.tobytes())
    assert read_idx(path).tolist() == table.tolist()
    path.write_bytes(struct.pack(">III", 0x0C02, 2, 3) + table.tobytes()[:-1])
    with pytest.raises(DataError, match=r"holds 23 bytes of values, its header says \(2, 3\)"):
        read_idx(path)
    (tmp_path / "t.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"t\.gz cannot be read"):
        read_idx(tmp_path / "t.gz")


def test_grader_data_downloads_qmnist_and_checks_it(
    qmnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.data import fetch

    served = tmp_path / "served"
    (qmnist_dir / "QMNIST").rename(served)
    asked: list[str] = []

    def from_folder(url: str, part: Path, offline_hint: str) -> None:
        asked.append(url)
        part.write_bytes((served / "raw" / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(fetch, "_stream", from_folder)
    line = prepare_holdout("mnist", qmnist_dir, tmp_path / "cache")
    assert asked == [qmnist.URL + name for name in qmnist.FILES]
    assert line.startswith(f"mnist: hold-out QMNIST's {EXTRA} extra test digits, checksum ")
    assert qmnist.present(qmnist_dir)


def test_a_corrupt_qmnist_download_is_refused_and_not_kept(
    qmnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.data import fetch

    (qmnist_dir / "QMNIST").rename(tmp_path / "served")
    monkeypatch.setattr(fetch, "_stream", lambda url, part, hint: part.write_bytes(b"junk"))
    with pytest.raises(DataError) as caught:
        prepare_holdout("mnist", qmnist_dir, tmp_path / "cache")
    assert str(caught.value).startswith(f"cannot download {qmnist.URL}{qmnist.IMAGES} (md5 ")
    assert str(caught.value).endswith("or pass --offline to go on without them")
    assert not qmnist.present(qmnist_dir)


def test_grader_data_offline_says_plainly_that_qmnist_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, cache_dir = tmp_path / "data", tmp_path / "cache"
    monkeypatch.setattr(mnist, "MD5", write_tiny_mnist(data_dir, 20, 10))
    result = invoke("data", "mnist", "--offline", "--data-dir", data_dir, "--cache-dir", cache_dir)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("mnist: MNIST (20 train / 10 test), checksum ")
    assert lines[1:] == [
        f"mnist: QMNIST's extra test digits are not in {data_dir}/QMNIST/raw: MNIST is graded "
        "without that private hold-out (`grader data mnist` downloads them)"
    ]


def test_grader_sandbox_says_whether_qmnist_is_here(qmnist_dir: Path, tmp_path: Path) -> None:
    assert holdout_line(qmnist_dir) == (
        f"hold-out: QMNIST's extra test digits for MNIST are in {qmnist_dir}/QMNIST/raw"
    )
    result = invoke("sandbox", "--data-dir", tmp_path / "empty")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"hold-out: QMNIST's extra test digits are not in {tmp_path}/empty/QMNIST/raw: MNIST is "
        "graded without that private hold-out (`grader data mnist` downloads them)"
    )


def test_an_mnist_spec_uses_qmnist_by_default_and_notes_its_absence(
    qmnist_dir: Path, tmp_path: Path, mnist_spec: Spec, tiny_mnist_data: PreparedData
) -> None:
    assert mnist_spec.holdout.uses_qmnist("mnist")
    graded = for_spec(mnist_spec, tiny_mnist_data, qmnist_dir, tmp_path / "cache")
    assert graded.holdout is not None and len(graded.holdout.labels) == EXTRA
    assert graded.notes == ()
    assert graded.data.checksum != tiny_mnist_data.checksum  # the hold-out is in the reuse key
    without = for_spec(mnist_spec, tiny_mnist_data, tmp_path / "empty", tmp_path / "cache")
    assert without.holdout is None and without.data == tiny_mnist_data
    assert without.notes == (qmnist.absent_note(tmp_path / "empty"),)
    assert without.holdout_said == "no private hold-out: a memorised test set can go unnoticed"
    off = dataclasses.replace(mnist_spec, holdout=Holdout(qmnist=False))
    assert for_spec(off, tiny_mnist_data, qmnist_dir, tmp_path / "cache").holdout is None


# --- a hold-out carved from the training set ------------------------------------------------


def test_a_carve_keeps_a_seeded_stratified_fraction_out_of_training(
    tiny_har: PreparedData, tmp_path: Path
) -> None:
    trained, holdout = carve(tiny_har, 0.25, 3, tmp_path / "cache")
    train_inputs = tiny_har.load("train_inputs")
    assert trained.train_size == 90 and len(holdout.labels) == 30
    # Every class keeps its share (stratified), and no held-out row is left in training.
    assert np.bincount(holdout.labels).tolist() == [5] * 6
    kept = {row.tobytes() for row in trained.load("train_inputs")}
    assert not kept & {row.tobytes() for row in holdout.inputs}
    assert len(kept) + len(holdout.labels) == len(train_inputs)
    assert (trained.load("test_inputs") == tiny_har.load("test_inputs")).all()
    assert holdout.description == "30 training rows (25%, seed 3) kept from students"
    assert trained.description.endswith("less 30 hold-out rows (25%, seed 3) (90 train / 60 test)")
    # Recorded: the same rows again from the cache, other rows for another seed.
    again, same = carve(tiny_har, 0.25, 3, tmp_path / "cache")
    assert again == trained and same.checksum == holdout.checksum
    assert carve(tiny_har, 0.25, 4, tmp_path / "cache")[1].checksum != holdout.checksum
    assert trained.private("holdout_rows").tolist() == sorted(trained.private("holdout_rows"))


# --- what the board says ---------------------------------------------------------------------


def test_the_board_says_which_assignments_have_no_hold_out(
    tmp_path: Path, mnist_spec: Spec, har_spec: Spec
) -> None:
    from support.results import graded

    held = "QMNIST's 50,000 extra test digits"
    results = [
        graded("ann", 0.97, assignment="mnist", holdout=held, holdout_accuracy=0.97),
        graded("bob", 0.95),
    ]
    board = build_board(results, {"mnist": mnist_spec, "har": har_spec})
    notes = {s.name: s.holdout_note for s in board.sections()}
    assert notes == {
        "mnist": f"Audited on a private hold-out: {held}.",
        "har": "Graded without a private hold-out: a submission that memorised the public test "
        "answers can go unnoticed.",
    }
    write_board(board, tmp_path, ["md", "json"])
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "Graded without a private hold-out" in markdown
    assert "Audited on a private hold-out: QMNIST" in markdown
    assert "Graded without a private hold-out" in render_html(board)
    assert (
        '"holdout": "Graded without a private hold-out'
        in (tmp_path / "leaderboard.json").read_text()
    )


@pytest.fixture
def mnist_spec() -> Spec:
    from grader.core.spec import load_spec

    return load_spec(ASSIGNMENTS / "mnist.toml")


@pytest.fixture
def tiny_mnist_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PreparedData:
    from grader.data.registry import prepare

    data_dir = tmp_path / "mnist-data"
    monkeypatch.setattr(mnist, "MD5", write_tiny_mnist(data_dir, 20, 10))
    return prepare("mnist", data_dir, tmp_path / "cache", download=False)
