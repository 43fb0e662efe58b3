"""Batch runs: the results store, reuse of unchanged results, regrading, resuming after a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from support.course import STUDENTS
from support.grading import GOOD_HAR
from support.runs import attempts, options

from grader.api import run
from grader.cli import main
from grader.sandbox.box import Sandbox

pytestmark = pytest.mark.slow


def test_run_records_every_attempt_and_writes_the_leaderboard(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    said: list[str] = []
    summary = run(options(course), sandbox, said.append)
    assert (summary.graded, summary.reused) == (3, 0)
    assert "har: no private hold-out: a memorised test set can go unnoticed" in said
    assert sorted(attempts(course["out"])) == [(s, "ok") for s in STUDENTS]
    board = pd.read_csv(course["out"] / "leaderboard.csv")
    assert sorted(board["student"]) == list(STUDENTS)
    assert list(board["rank"]) == [1, 2, 3]
    assert not list(course["out"].glob(".leaderboard.*"))  # no temp file left behind
    assert (course["out"] / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_reuses_unchanged_and_regrades_only_the_changed_student(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    run(options(course), sandbox, lambda _: None)
    first = pd.read_csv(course["out"] / "leaderboard.csv")
    again = run(options(course), sandbox, lambda _: None)
    assert (again.graded, again.reused) == (0, 3)
    pd.testing.assert_frame_equal(pd.read_csv(course["out"] / "leaderboard.csv"), first)

    changed = course["submissions"] / "ben" / "har.py"
    changed.write_text(changed.read_text().replace('"epochs": 2', '"epochs": 3'))
    third = run(options(course), sandbox, lambda _: None)
    assert (third.graded, third.reused) == (1, 2)
    assert [s for s, _ in attempts(course["out"])][3:] == ["ben"]
    board = pd.read_csv(course["out"] / "leaderboard.csv")
    assert len(board) == 3  # the newest attempt per student, never a duplicate row
    assert int(board.set_index("student").loc["ben", "epochs"]) == 3


def test_force_and_a_changed_spec_regrade_everything(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    run(options(course), sandbox, lambda _: None)
    assert run(options(course, force=True), sandbox, lambda _: None).graded == 3
    spec = course["assignments"] / "har.toml"
    spec.write_text(spec.read_text().replace("max_epochs = 5", "max_epochs = 6"))
    assert run(options(course), sandbox, lambda _: None).graded == 3
    assert len(attempts(course["out"])) == 9


def _cli(course: dict[str, Path]) -> list[str]:
    return [
        sys.executable, "-m", "grader.cli", "run", str(course["submissions"]),
        "--out", str(course["out"]), "--assignments", str(course["assignments"]),
        "--data-dir", str(course["data"]), "--cache-dir", str(course["cache"]),
        "--workers", "1",
    ]  # fmt: skip


def _wait_for_attempts(out: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "grades.sqlite").exists():
            try:
                if len(attempts(out)) >= count:
                    return
            except sqlite3.OperationalError:
                pass  # the schema is being created
        time.sleep(0.2)
    pytest.fail(f"the grader did not record {count} attempt(s) in time")


def _leftovers(workspace: Path, token: str, before: set[int]) -> list[str]:
    """Processes of the killed grader: cold jobs name its workspace, warm ones run a source
    holding the token, and its warm processes are new ones of this interpreter."""
    warm = f"{sys.executable} -s -B -P -m grader.sandbox.zygote"
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        args = _read(entry / "cmdline").replace("\0", " ")
        source = _read(entry / "root" / "job" / "in" / "submission.py")
        new_warm = int(entry.name) not in before and args.startswith(warm)
        if str(workspace) in args or token in source or new_warm:
            found.append(f"{entry.name}: {args}")
    return found


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_run_loses_nothing_and_the_next_run_finishes(
    course: dict[str, Path], sandbox: Sandbox, how: signal.Signals, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"  # the grader's temp folder: its cold jobs name it
    workspace.mkdir()
    token = uuid.uuid4().hex  # in every source: its warm jobs hold it at /job/in
    for student in STUDENTS:
        source = course["submissions"] / student / "har.py"
        source.write_text(source.read_text() + f"\n# {token}\n")
    last = course["submissions"] / STUDENTS[-1] / "har.py"
    kept = last.read_text()
    last.write_text(kept + "import time\ntime.sleep(60)\n")  # still grading when killed
    before = {int(p.name) for p in Path("/proc").glob("[0-9]*")}
    env = {**os.environ, "TMPDIR": str(workspace)}
    process = subprocess.Popen(
        _cli(course),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # as at a terminal: a shell's background job (CI's, perhaps) starts with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_attempts(course["out"], 1, process)
    process.send_signal(how)
    process.wait(timeout=60)
    graded_before = attempts(course["out"])
    assert 1 <= len(graded_before) < 3
    time.sleep(1)
    assert _leftovers(workspace, token, before) == []  # its jobs and warm processes died with it
    last.write_text(kept)

    summary = run(options(course), sandbox, lambda _: None)
    assert (summary.reused, summary.graded) == (len(graded_before), 3 - len(graded_before))
    assert sorted(s for s, _ in attempts(course["out"])) == sorted(STUDENTS)  # no duplicates
    with sqlite3.connect(course["out"] / "grades.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert len(pd.read_csv(course["out"] / "leaderboard.csv")) == 3


def test_cli_run_exits_zero_with_failed_rows_and_prints_the_table(
    course: dict[str, Path],
) -> None:
    (course["submissions"] / "cy" / "har.py").write_text("raise RuntimeError('oops')\n")
    result = CliRunner().invoke(main, _cli(course)[3:], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    board = pd.read_csv(course["out"] / "leaderboard.csv")
    row = board.set_index("student").loc["cy"]
    assert (row["status"], row["message"]) == (
        "error",
        "train: RuntimeError: oops (line 1 of the submission)",
    )
    assert pd.isna(row["rank"])
    assert "cy" in result.stdout and "RuntimeError: oops" in result.stdout


def test_cli_reports_a_truncated_data_file_in_one_line(course: dict[str, Path]) -> None:
    data = course["out"].parent / "broken-data"
    shutil.copytree(course["data"], data)
    x_train = data / "UCI_HAR" / "UCI HAR Dataset" / "train" / "X_train.txt"
    x_train.write_bytes(x_train.read_bytes()[:-2000])
    args = _cli(course)[3:]
    args[args.index("--data-dir") + 1] = str(data)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"Error: {x_train}: row ")
    assert lines[-1].endswith("values, expected 561")


def test_cli_reports_a_corrupt_store_and_keeps_it(course: dict[str, Path]) -> None:
    course["out"].mkdir()
    store = course["out"] / "grades.sqlite"
    store.write_bytes(b"this is not a database" * 100)
    result = CliRunner().invoke(main, _cli(course)[3:])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {store} is not a usable results store (file is not a database); "
        "move it aside and run again to start a new one"
    )
    assert store.read_bytes() == b"this is not a database" * 100


def test_a_symlinked_folder_out_of_the_tree_is_a_failed_row(
    course: dict[str, Path], sandbox: Sandbox, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "mallory"
    outside.mkdir(parents=True)
    (outside / "har.py").write_text(textwrap.dedent(GOOD_HAR))
    os.symlink(outside, course["submissions"] / "mallory")
    summary = run(options(course), sandbox, lambda _: None)
    row = summary.board.set_index("student").loc["mallory"]
    assert (row["status"], row["message"]) == (
        "invalid",
        "submission folder is a symlink out of the submissions tree",
    )
    assert (summary.board["status"] == "ok").sum() == 3


def test_each_run_is_logged_with_its_sandbox_layers(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    run(options(course), sandbox, lambda _: None)
    run(options(course), sandbox, lambda _: None)
    with sqlite3.connect(course["out"] / "grades.sqlite") as db:
        rows = db.execute("SELECT sandbox, graded, reused FROM runs ORDER BY id").fetchall()
    assert [(graded, reused) for _, graded, reused in rows] == [(3, 0), (0, 3)]
    layers = json.loads(rows[0][0])
    assert [layer.split(":")[0] for layer in layers] == [
        "namespaces", "identity", "limits", "cgroups", "seccomp", "landlock"]  # fmt: skip
    assert layers == [str(layer) for layer in sandbox.layers]


def test_a_500_mb_weights_file_is_a_failed_row_and_is_not_read(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    huge = course["submissions"] / "cy" / "har.safetensors"
    huge.touch()
    os.truncate(huge, 500 << 20)  # sparse: the test writes nothing, reading it would take time
    started = time.monotonic()
    summary = run(options(course, mode="auto"), sandbox, lambda _: None)
    row = summary.board.set_index("student").loc["cy"]
    assert (row["status"], row["message"]) == (
        "invalid",
        "har.safetensors is 500 MB; weights are limited to 64 MB",
    )
    assert (summary.board["status"] == "ok").sum() == 2
    assert time.monotonic() - started < 120


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A folder even root cannot write into (chattr +i), where the filesystem supports it."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if (
        shutil.which("chattr") is None
        or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode
    ):
        pytest.skip("chattr +i is not supported here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_output_folder_is_a_one_line_error(
    course: dict[str, Path], immutable: Path
) -> None:
    args = _cli(course)[3:]
    args[args.index("--out") + 1] = str(immutable)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: cannot create {immutable / 'grades.sqlite'}: Operation not permitted"
    )
