"""Reading what student code produced: no links, no FIFOs, size caps, formats that run no code."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save as save_bytes
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file
from torch import nn

from grader.core.results import Status
from grader.jobs.untrusted import (
    UntrustedFileError,
    Weights,
    read_bytes,
    read_report,
    read_scores,
    sanitize_weights,
)
from grader.protocol import CheckRecord, ChildReport

# --- read_bytes -----------------------------------------------------------------------------


def test_reads_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"0123456789")
    assert read_bytes(path, 10) == b"0123456789"  # exactly at the cap is fine


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UntrustedFileError) as info:
        read_bytes(tmp_path / "report.json", 100)
    assert str(info.value) == "report.json was not written"


@pytest.mark.parametrize("target", ["file", "dangling"])
def test_symlink_is_refused(tmp_path: Path, target: str) -> None:
    real = tmp_path / "secret.txt"
    if target == "file":
        real.write_text("the grader's secrets")
    link = tmp_path / "report.json"
    link.symlink_to(real)
    with pytest.raises(UntrustedFileError) as info:
        read_bytes(link, 100)
    assert str(info.value) == (
        "report.json cannot be opened (Too many levels of symbolic links); links are not accepted"
    )


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    with pytest.raises(UntrustedFileError) as info:
        read_bytes(fifo, 100)
    assert str(info.value) == "report.json is not a regular file"


def test_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").mkdir()
    with pytest.raises(UntrustedFileError) as info:
        read_bytes(tmp_path / "model.safetensors", 100)
    assert str(info.value) == "model.safetensors is not a regular file"


def test_oversize_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"")
    os.truncate(path, 3 << 20)
    with pytest.raises(UntrustedFileError) as info:
        read_bytes(path, (1 << 20) + (1 << 19))
    assert str(info.value) == "big.bin is 3 MB, over the 1.5 MB limit"


def test_one_byte_over_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"x" * 11)
    expected = r"^out\.bin is 11 bytes, over the 10 bytes limit$"
    with pytest.raises(UntrustedFileError, match=expected):
        read_bytes(path, 10)


# --- read_report ----------------------------------------------------------------------------


def write_report(tmp_path: Path, data: bytes | object) -> Path:
    path = tmp_path / "report.json"
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return path


@pytest.mark.parametrize("status", ["ok", "invalid", "error", "memory"])
def test_report_statuses(tmp_path: Path, status: str) -> None:
    report = read_report(write_report(tmp_path, {"status": status, "message": "m", "epochs": 3}))
    assert report == ChildReport(Status(status), "m", epochs=3)


@pytest.mark.parametrize("status", ["timeout", "crashed", "sandbox", "nondeterministic"])
def test_a_child_cannot_claim_statuses_only_the_grader_gives(tmp_path: Path, status: str) -> None:
    assert read_report(write_report(tmp_path, {"status": status})) is None


@pytest.mark.parametrize(
    ("raw", "epochs", "seconds"),
    [
        ({"epochs": 3, "train_seconds": 1.5}, 3, 1.5),
        ({"epochs": True, "train_seconds": "1.5"}, None, None),
        ({"epochs": 2.0, "train_seconds": 4}, None, 4.0),
    ],
)
def test_report_numbers_must_have_their_types(
    tmp_path: Path, raw: dict[str, object], epochs: int | None, seconds: float | None
) -> None:
    report = read_report(write_report(tmp_path, {"status": "ok", **raw}))
    assert report is not None
    assert (report.epochs, report.train_seconds) == (epochs, seconds)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("line one\nline two\r\n\tand  three  ", "line one line two and three"),
        ("bold \x1b[1mtext\x1b[0m and a bell\x07", "bold ?[1mtext?[0m and a bell?"),
        ("x" * 1000, "x" * 300),
        ("word " * 200, ("word " * 60).rstrip()),
        (["a", 1], "['a', 1]"),
        (None, "None"),
    ],
)
def test_report_message_is_one_short_line(tmp_path: Path, message: object, expected: str) -> None:
    report = read_report(write_report(tmp_path, {"status": "error", "message": message}))
    assert report is not None
    assert report.message == expected
    assert "\n" not in report.message
    assert len(report.message) <= 300


def test_report_carries_the_checks_it_ran_and_drops_what_is_malformed(tmp_path: Path) -> None:
    checks = [
        {"name": "defines_build_model", "passed": True},
        {"name": "forward\x1b[1m_shape\nx", "passed": False},  # made one inert line
        {"name": "", "passed": True},  # no name
        {"name": "n", "passed": 1},  # not a bool
        {"name": ["n"], "passed": True},
        "defines_hparams",
        {"name": "y" * 500, "passed": True},
    ]
    report = read_report(write_report(tmp_path, {"status": "invalid", "checks": checks}))
    assert report is not None
    assert report.checks == (
        CheckRecord("defines_build_model", True),
        CheckRecord("forward?[1m_shape x", False),
        CheckRecord("y" * 64, True),
    )


@pytest.mark.parametrize("checks", [None, "all", {"name": "a", "passed": True}, 3])
def test_checks_that_are_not_a_list_are_none(tmp_path: Path, checks: object) -> None:
    report = read_report(write_report(tmp_path, {"status": "ok", "checks": checks}))
    assert report is not None and report.checks == ()


def test_a_report_lists_at_most_64_checks(tmp_path: Path) -> None:
    checks = [{"name": f"c{i}", "passed": True} for i in range(1000)]
    report = read_report(write_report(tmp_path, {"status": "ok", "checks": checks}))
    assert report is not None and len(report.checks) == 64


def test_report_without_message_gets_an_empty_one(tmp_path: Path) -> None:
    assert read_report(write_report(tmp_path, {"status": "ok"})) == ChildReport(Status.OK, "")


@pytest.mark.parametrize(
    "data",
    [
        ["ok"],
        "ok",
        42,
        None,
        {"status": "passed"},
        {"status": "OK"},
        {"status": ["ok"]},
        {"message": "no status"},
        b"",
        b"not json",
        b'{"status": "ok"',
        b"\xff\xfe{}",
        b"NaN",
        json.dumps({"status": "ok", "message": "x" * 300_000}).encode(),  # over the 256 kB cap
    ],
    ids=lambda d: repr(d)[:30],
)
def test_untrustworthy_report_is_none(tmp_path: Path, data: object) -> None:
    assert read_report(write_report(tmp_path, data)) is None


def test_report_that_is_a_folder_is_none(tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()
    assert read_report(tmp_path / "report.json") is None


def test_missing_or_linked_report_is_none(tmp_path: Path) -> None:
    assert read_report(tmp_path / "report.json") is None
    real = write_report(tmp_path, {"status": "ok"})
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert read_report(link) is None


def test_deeply_nested_report_is_none(tmp_path: Path) -> None:
    assert read_report(write_report(tmp_path, b"[" * 60_000)) is None


# --- read_scores ----------------------------------------------------------------------------


def write_npy(tmp_path: Path, array: np.ndarray, allow_pickle: bool = False) -> Path:
    path = tmp_path / "scores.npy"
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_scores_give_the_argmax(tmp_path: Path, dtype: type) -> None:
    scores = np.array([[0.1, 0.7, 0.2], [5.0, -1.0, 4.0]], dtype=dtype)
    predicted = read_scores(write_npy(tmp_path, scores), 2, 3)
    assert predicted.tolist() == [1, 0]


def test_fortran_order_scores(tmp_path: Path) -> None:
    scores = np.asfortranarray(np.array([[0.0, 1.0], [2.0, 1.0], [0.5, 0.6]]))
    assert read_scores(write_npy(tmp_path, scores), 3, 2).tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 2)), "predictions have shape (3, 2), expected (2, 3)"),
        (np.zeros(6), "predictions have shape (6,), expected (2, 3)"),
        (np.zeros((2, 3, 1)), "predictions have shape (2, 3, 1), expected (2, 3)"),
        (np.zeros((2, 3), dtype=np.int64), "predictions have dtype int64, expected floats"),
        (np.zeros((2, 3), dtype=bool), "predictions have dtype bool, expected floats"),
        (np.zeros((2, 3), dtype=np.complex64), "predictions have dtype complex64, expected floats"),
        (
            np.array([[0.0, np.nan, 1.0], [0.0, 0.0, 0.0]]),
            "the model produced NaN or infinite outputs",
        ),
        (
            np.array([[0.0, np.inf, 1.0], [0.0, 0.0, 0.0]]),
            "the model produced NaN or infinite outputs",
        ),
        (
            np.array([[0.0, 0.0, 0.0], [-np.inf, 0, 0]], dtype=np.float32),
            "the model produced NaN or infinite outputs",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_scores(tmp_path: Path, array: np.ndarray, message: str) -> None:
    with pytest.raises(UntrustedFileError) as info:
        read_scores(write_npy(tmp_path, array), 2, 3)
    assert str(info.value) == message


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    evil = np.empty((2, 3), dtype=object)
    evil[:] = 1.0
    path = write_npy(tmp_path, evil, allow_pickle=True)
    with pytest.raises(UntrustedFileError) as info:
        read_scores(path, 2, 3)
    assert str(info.value) == (
        "scores.npy is not a valid .npy array (Object arrays cannot be "
        "loaded when allow_pickle=False)"
    )


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x93NUMPY\x01\x00", b"\x80\x04K\x01."])
def test_garbage_scores_are_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "scores.npy"
    path.write_bytes(data)
    with pytest.raises(UntrustedFileError) as info:
        read_scores(path, 2, 3)
    assert str(info.value).startswith("scores.npy is not a valid .npy array (")
    assert "\n" not in str(info.value)


def test_oversize_scores_are_refused_before_parsing(tmp_path: Path) -> None:
    path = write_npy(tmp_path, np.zeros((1000, 20)))
    with pytest.raises(UntrustedFileError) as info:
        read_scores(path, 1000, 10)
    assert str(info.value) == "scores.npy is 156.4 KB, over the 82.1 KB limit"


def test_missing_scores(tmp_path: Path) -> None:
    with pytest.raises(UntrustedFileError, match=r"^test_scores\.npy was not written$"):
        read_scores(tmp_path / "test_scores.npy", 2, 3)


def test_npz_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scores.npy"
    buffer = io.BytesIO()
    np.savez(buffer, scores=np.zeros((2, 3)))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UntrustedFileError):
        read_scores(path, 2, 3)


# --- sanitize_weights -----------------------------------------------------------------------


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))


def save_model(path: Path, metadata: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone().contiguous() for k, v in small_model().state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    return state


def test_sanitize_round_trips_tensors_and_counts_parameters(tmp_path: Path) -> None:
    state = save_model(tmp_path / "model.safetensors")
    dest = tmp_path / "clean.safetensors"
    weights = sanitize_weights(tmp_path / "model.safetensors", dest, 1 << 20)
    assert weights == Weights(dest, hashlib.sha256(dest.read_bytes()).hexdigest(), weights.params)
    # 4*3+3 + 3+3 (BatchNorm weight and bias) + 3*2+2; running stats are buffers, not parameters
    assert weights.params == sum(p.numel() for p in small_model().parameters()) == 29
    back = load_file(str(dest))
    assert sorted(back) == sorted(state)
    for name, tensor in state.items():
        assert torch.equal(back[name], tensor), name


def test_sanitize_drops_metadata(tmp_path: Path) -> None:
    save_model(tmp_path / "model.safetensors", metadata={"smuggled": "x"})
    with safe_open(str(tmp_path / "model.safetensors"), "np") as handle:
        assert handle.metadata() == {"smuggled": "x"}
    sanitize_weights(tmp_path / "model.safetensors", tmp_path / "clean.safetensors", 1 << 20)
    with safe_open(str(tmp_path / "clean.safetensors"), "np") as handle:
        assert not handle.metadata()
    assert b"smuggled" not in (tmp_path / "clean.safetensors").read_bytes()


def test_sanitized_digest_ignores_metadata(tmp_path: Path) -> None:
    save_model(tmp_path / "a.safetensors", metadata={"run": "1"})
    save_model(tmp_path / "b.safetensors", metadata={"run": "2", "extra": "y"})
    a = sanitize_weights(tmp_path / "a.safetensors", tmp_path / "a-clean.safetensors", 1 << 20)
    b = sanitize_weights(tmp_path / "b.safetensors", tmp_path / "b-clean.safetensors", 1 << 20)
    assert a.sha256 == b.sha256


def test_integer_tensors_are_kept_but_not_counted(tmp_path: Path) -> None:
    save_numpy(
        {
            "w": np.ones((2, 5), np.float32),
            "table": np.arange(7, dtype=np.int64),
            "bn.running_mean": np.zeros(5, np.float32),
        },
        str(tmp_path / "m.safetensors"),
    )
    weights = sanitize_weights(tmp_path / "m.safetensors", tmp_path / "c.safetensors", 1 << 20)
    assert weights.params == 10
    assert sorted(load_file(str(tmp_path / "c.safetensors"))) == ["bn.running_mean", "table", "w"]


def header_bomb() -> bytes:
    return (2**40).to_bytes(8, "little") + b"junk" * 16


def truncated() -> bytes:
    return save_bytes({"w": np.ones((4, 4), np.float32)})[:-7]


@pytest.mark.parametrize(
    "data",
    [header_bomb(), truncated(), b"", b"\x08" + b"\0" * 7 + b"{}", b"not safetensors at all"],
    ids=["header-bomb", "truncated", "empty", "short", "text"],
)
def test_invalid_safetensors_is_refused(tmp_path: Path, data: bytes) -> None:
    source = tmp_path / "model.safetensors"
    source.write_bytes(data)
    dest = tmp_path / "clean.safetensors"
    with pytest.raises(UntrustedFileError) as info:
        sanitize_weights(source, dest, 1 << 20)
    assert str(info.value).startswith("model.safetensors is not a valid safetensors file (")
    assert "\n" not in str(info.value)
    assert not dest.exists()


def test_no_tensors_is_refused(tmp_path: Path) -> None:
    save_numpy({}, str(tmp_path / "model.safetensors"))
    with pytest.raises(UntrustedFileError) as info:
        sanitize_weights(tmp_path / "model.safetensors", tmp_path / "clean.safetensors", 1 << 20)
    assert str(info.value) == "model.safetensors holds no tensors"


def test_sanitize_refuses_links_and_oversize(tmp_path: Path) -> None:
    save_model(tmp_path / "real.safetensors")
    (tmp_path / "model.safetensors").symlink_to(tmp_path / "real.safetensors")
    with pytest.raises(UntrustedFileError, match="links are not accepted"):
        sanitize_weights(tmp_path / "model.safetensors", tmp_path / "clean.safetensors", 1 << 20)
    with pytest.raises(UntrustedFileError, match=r"^real\.safetensors is [0-9]+ bytes, over the"):
        sanitize_weights(tmp_path / "real.safetensors", tmp_path / "clean.safetensors", 100)
    assert not (tmp_path / "clean.safetensors").exists()
