"""Grading on Slurm through submitit, against a real one-node cluster: Debian's slurmctld, slurmd
and munge, started by scripts/slurm-local in a folder of the tests' own and stopped after.

Where the cluster cannot start (no root, Slurm not installed) those tests skip and say why; in CI
(GRADER_REQUIRE_SANDBOX=1) they fail instead, as missing sandbox layers do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from support.course import STUDENTS, write_course
from support.grading import TEST_ENVIRONMENT
from support.layers import LAYER_NAMES, READ_STATUS, assert_status_shows, require_sandbox
from support.paths import REPO
from support.runs import attempts, options

from grader.api import RunOptions, RunRequest, RunSummary, run
from grader.cli import main
from grader.core.results import Status
from grader.core.spec import Spec
from grader.core.submission import Submission
from grader.data.cache import PreparedData
from grader.data.graded import GradingData
from grader.execute import slurm_queue
from grader.execute.local import GradeRequest
from grader.execute.slurm import SlurmOptions, sbatch_parameters
from grader.execute.slurm_queue import TaskState
from grader.jobs.context import Settings, make_context
from grader.sandbox.box import Sandbox, SandboxOptions

SCRIPT = REPO / "scripts" / "slurm-local"
UNAVAILABLE = 3  # scripts/slurm-local: this machine cannot run the cluster


# -- without a cluster ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "message"),
    [
        (TaskState("TIMEOUT", "2:00"), Status.TIMEOUT,
         "the Slurm task reached its time limit of 2:00 before grading ended"),
        (TaskState("DEADLINE"), Status.TIMEOUT,
         "the Slurm task reached its time limit before grading ended"),
        (TaskState("OUT_OF_MEMORY", "7:00"), Status.MEMORY,
         "the Slurm task used more memory than it asked Slurm for before grading ended"),
        (TaskState("NODE_FAIL"), Status.CRASHED,
         "the Slurm task ended without a result (Slurm state NODE_FAIL)"),
        (TaskState("CANCELLED"), Status.CRASHED,
         "the Slurm task ended without a result (Slurm state CANCELLED)"),
        (TaskState("FAILED"), Status.CRASHED,
         "the Slurm task ended without a result (Slurm state FAILED)"),
        (TaskState("COMPLETED"), Status.CRASHED,
         "the Slurm task ended without a result (Slurm state COMPLETED)"),
        (None, Status.CRASHED,
         "the Slurm task ended without a result, and Slurm no longer knows its state"),
    ],
)  # fmt: skip
def test_a_task_that_ended_without_a_result_is_a_failed_row(
    state: TaskState | None, status: Status, message: str
) -> None:
    assert slurm_queue.failure(state) == (status, message)
    assert status.regraded or status is Status.MEMORY


def test_task_states_are_read_from_squeue_and_sacct_lines() -> None:
    squeue = "12_0|RUNNING|7:00\n12_1|PENDING|7:00\n9|TIMEOUT|2:00\n"
    sacct = "13_4|CANCELLED by 0|7:00\n13_4.batch|CANCELLED|\n13_5|OUT_OF_MEMORY|7:00\n|x|\n"
    assert slurm_queue.parse_table(squeue + sacct) == {
        "12_0": TaskState("RUNNING", "7:00"),
        "12_1": TaskState("PENDING", "7:00"),
        "9": TaskState("TIMEOUT", "2:00"),
        "13_4": TaskState("CANCELLED", "7:00"),
        "13_5": TaskState("OUT_OF_MEMORY", "7:00"),
    }
    assert TaskState("PENDING").active and TaskState("COMPLETING").active
    assert not TaskState("TIMEOUT").active and not TaskState("COMPLETED").active


def _request(har_spec: Spec, tiny_har: PreparedData, **settings: Any) -> GradeRequest:
    sub = Submission("ana", "har", Path("har.py"), None, "c" * 64)
    graded = GradingData(tiny_har, None)
    ctx = make_context(har_spec, graded, TEST_ENVIRONMENT, Settings(**settings))
    return GradeRequest(sub, ctx)


def test_sbatch_parameters_are_the_budgets_and_the_options_given(
    har_spec: Spec, tiny_har: PreparedData, tmp_path: Path
) -> None:
    options = SlurmOptions(tmp_path)
    assert sbatch_parameters(_request(har_spec, tiny_har), options) == {
        "job_name": "grader-har",
        "time": 2 + 5,  # train and evaluate, 60 s each, and 5 minutes to start
        "mem": f"{2048 + 1536}M",  # the job's budget, and the task's own processes
        "cpus_per_task": 1,
        "additional_parameters": {"signal": "URG"},  # a warning no process acts on
    }
    given = SlurmOptions(
        tmp_path,
        partition="gpu",
        account="course",
        gpus_per_task=1,
        array_parallelism=8,
        extra=(("qos", "high"), ("time", "30")),
    )
    request = _request(har_spec, tiny_har, timeout_seconds=600, verify_determinism=True)
    assert sbatch_parameters(request, given) == {
        "job_name": "grader-har",
        "time": 30 + 5,  # three phases of 600 s
        "mem": "3584M",
        "cpus_per_task": 1,
        "partition": "gpu",
        "account": "course",
        "gpus_per_task": 1,
        "array_parallelism": 8,
        # submitit applies them last: time=30 wins over the budgets' time
        "additional_parameters": {"signal": "URG", "qos": "high", "time": "30"},
    }
    three_seeds = sbatch_parameters(_request(har_spec, tiny_har), options, seeds=3)
    assert three_seeds["time"] == 6 + 5  # train and evaluate each seed in turn


def _invoke(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["run", *map(str, args)])
    return result.exit_code, result.output.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--partition", "p", "--shared-dir", "s"], "--shared-dir, --partition: only with "
         "--executor slurm"),
        (["--slurm-option", "qos=high"], "--slurm-option: only with --executor slurm"),
        (["--executor", "slurm"], "--executor slurm needs --shared-dir, a folder every node "
         "sees at the same path"),
        (["--executor", "slurm", "--shared-dir", "s", "--workers", "2"], "--workers is for "
         "--executor local; with slurm, use --slurm-array-parallelism"),
        (["--executor", "slurm", "--shared-dir", "s", "--slurm-option", "qos"],
         "--slurm-option 'qos': expected KEY=VALUE, such as qos=high"),
        (["--executor", "slurm", "--shared-dir", "s", "--slurm-option", "=x"],
         "--slurm-option '=x': expected KEY=VALUE, such as qos=high"),
        (["--executor", "slurm", "--shared-dir", "s", "--slurm-option", "comment=a\nb"],
         "--slurm-option 'comment=a\\nb': expected KEY=VALUE, such as qos=high"),
    ],
)  # fmt: skip
def test_slurm_options_that_do_not_fit_are_one_line_errors(
    args: list[str], error: str, tmp_path: Path
) -> None:
    code, last = _invoke(tmp_path / "submissions", *args)
    assert (code, last) == (1, f"Error: {error}")


def test_slurm_without_its_commands_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = _course(tmp_path, tmp_path / "no-data")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("GRADER_REQUIRE_SANDBOX", raising=False)
    code, last = _invoke(*_cli_args(course), "--no-sandbox")
    assert (code, last) == (
        1,
        "Error: --executor slurm: sbatch, srun, squeue, scancel not found; run the grader on "
        "a machine that submits jobs to Slurm",
    )


# -- the cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """A one-node cluster of the tests' own, reached through SLURM_CONF for the whole session."""
    # Not under pytest's 0700 temp folders: munged wants everyone to reach its socket's folder.
    folder = Path(tempfile.mkdtemp(prefix="grader-slurm-"))
    up = _script("up", folder)
    if up.returncode == UNAVAILABLE:
        shutil.rmtree(folder)
        reason = f"no Slurm cluster here: {up.stderr.strip()}"
        if require_sandbox():
            pytest.fail(f"CI must run the Slurm tests; {reason}")
        pytest.skip(reason)
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    try:
        assert up.returncode == 0, up.stderr
        yield folder
    finally:
        _script("down", folder)
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        shutil.rmtree(folder, ignore_errors=True)


def _script(action: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), action, "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _course(tmp_path: Path, data: Path, timeout_seconds: int = 60) -> dict[str, Path]:
    """write_course's three HAR students, with the shared folder for Slurm and a memory budget
    that lets the test node run two tasks at once."""
    course = write_course(tmp_path, data, timeout_seconds)
    spec = course["assignments"] / "har.toml"
    spec.write_text(spec.read_text().replace("memory_mb = 4096", "memory_mb = 2048"))
    return course | {"shared": tmp_path / "shared"}


def _options(
    course: dict[str, Path],
    *,
    slurm: bool = True,
    extra: tuple[tuple[str, str], ...] = (),
    **changes: object,
) -> RunOptions:
    """A run of the course, on the test cluster unless slurm is False (then on two workers)."""
    flags = SandboxOptions(require=require_sandbox())
    on_slurm = SlurmOptions(course["shared"], extra=extra, sandbox=flags, poll_seconds=0.5)
    return options(course, slurm=on_slurm if slurm else None, **changes)


def _cli_args(course: dict[str, Path]) -> list[str | Path]:
    return [
        course["submissions"], "--out", course["out"], "--assignments", course["assignments"],
        "--data-dir", course["data"], "--cache-dir", course["cache"],
        "--executor", "slurm", "--shared-dir", course["shared"],
    ]  # fmt: skip


def _tasks(out: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(out / "grades.sqlite") as db:
        query = "SELECT student, job_id, closed_by FROM slurm_tasks ORDER BY id"
        return db.execute(query).fetchall()


def _board(summary: RunSummary) -> pd.DataFrame:
    """The leaderboard without what differs from run to run: how long and when."""
    return summary.board.drop(columns=["train_seconds", "finished_at"]).reset_index(drop=True)


@pytest.mark.slow
def test_slurm_local_up_is_idempotent(slurm_cluster: Path) -> None:
    again = _script("up", slurm_cluster)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"export SLURM_CONF={slurm_cluster / 'slurm.conf'}\n"
    sinfo = subprocess.run(
        ["sinfo", "--noheader", "--format=%P %t"], capture_output=True, text=True, check=True
    )
    assert sinfo.stdout.split() == ["grader*", "idle"]


@pytest.mark.slow
def test_a_batch_graded_on_slurm_equals_the_local_leaderboard(
    slurm_cluster: Path, sandbox: Sandbox, tiny_data_dir: Path, tmp_path: Path
) -> None:
    course = _course(tmp_path, tiny_data_dir)
    (course["submissions"] / "dee").mkdir()
    (course["submissions"] / "dee" / "har.py").write_text("raise RuntimeError('oops')\n")
    (course["submissions"] / "eve").mkdir()
    (course["submissions"] / "eve" / "har.py").write_text("def build_model(:\n")  # invalid
    # A private hold-out set, which the tasks read from the shared folder.
    test_set = tiny_data_dir / "UCI_HAR" / "UCI HAR Dataset" / "test"
    shutil.copytree(test_set, course["assignments"] / "holdout" / "test")
    spec = course["assignments"] / "har.toml"
    spec.write_text(spec.read_text() + '\n[holdout]\nfolder = "holdout"\n')
    local_out = tmp_path / "local"
    seeds = (0, 1)  # graded in turn by each submission's task
    local_options = _options(course, slurm=False, out=local_out, seeds=seeds)
    local = run(local_options, sandbox, print)
    on_slurm = run(_options(course, seeds=seeds), sandbox, print)

    pd.testing.assert_frame_equal(_board(on_slurm), _board(local))
    assert set(on_slurm.board["status"]) == {"ok", "error", "invalid"}
    dee_message = on_slurm.board.set_index("student").loc["dee", "message"]
    graded = _graded(course["out"])
    assert graded == _graded(local_out)
    assert [row[0] for row in graded if row[1] == "ok" and row[5]] == list(STUDENTS)
    rows = on_slurm.board.set_index("student").loc[list(STUDENTS)]
    assert list(rows["seeds"]) == ["0,1"] * len(STUDENTS)
    assert rows["holdout_accuracy"].notna().all()
    for student in STUDENTS:  # the head kept each task's weights where a local run keeps them
        name = Path("weights") / "har" / f"{student}.safetensors"
        assert (course["out"] / name).read_bytes() == (local_out / name).read_bytes()
    # The invalid submission needs no task; every other one had a task for its seeds, each seed
    # remembered until its result closed it, but dee's second: its first failed, so the task
    # stopped there (as a local run stops) and the head closed the seed left out.
    tasks = _tasks(course["out"])
    assert sorted((s, c) for s, _, c in tasks) == [
        *((s, "result") for s in ("ana", "ben", "cy") for _ in seeds),
        ("dee", "abandoned"),
        ("dee", "result"),
    ]
    assert "(not graded on seed 1: the same code fails the same way)" in dee_message
    assert len({job for _, job, _ in tasks}) == len({(s, job) for s, job, _ in tasks}) == 4
    _assert_no_labels_in_task_files(course["shared"], course["cache"])


def _graded(out: Path) -> list[tuple[object, ...]]:
    """What grading measured, with the weights' hash and the CPU whose numerics were pinned."""
    columns = (
        "student, status, message, test_accuracy, train_accuracy, weights_sha256, cpu, "
        "test_accuracy_std, holdout_accuracy, agreement, perturbed_drop"
    )
    with sqlite3.connect(out / "grades.sqlite") as db:
        return db.execute(f"SELECT {columns} FROM attempts ORDER BY student").fetchall()


def _assert_no_labels_in_task_files(shared: Path, local_cache: Path) -> None:
    """Tasks see data through the shared cache alone; their own folders never hold labels."""
    (labels_file,) = local_cache.glob("uci_har-*/private/test_labels.npy")
    labels = np.load(labels_file).tobytes()
    for part in ("data", "holdout", "tasks", "jobs"):
        assert (shared / part).stat().st_mode & 0o777 == 0o700, part
    task_files = [p for part in ("tasks", "jobs") for p in (shared / part).rglob("*")]
    assert any(p.name.endswith("_submitted.pkl") for p in task_files)
    for path in task_files:
        if path.is_file() and not path.is_symlink():
            assert labels not in path.read_bytes(), path


SLEEPS = """
import time

HPARAMS = {"epochs": 1, "batch_size": 32, "lr": 0.01}


def build_model(input_shape, num_classes):
    time.sleep(900)  # TOKEN
"""


@pytest.mark.slow
def test_a_task_over_its_time_limit_becomes_timeout_and_the_batch_goes_on(
    slurm_cluster: Path, sandbox: Sandbox, tiny_data_dir: Path, tmp_path: Path
) -> None:
    course = _course(tmp_path, tiny_data_dir, timeout_seconds=900)  # the sandbox would wait
    token = uuid.uuid4().hex
    (course["submissions"] / "ben" / "har.py").write_text(SLEEPS.replace("TOKEN", token))
    options = _options(course, extra=(("time", "1"),))  # Slurm's limit: 1 minute
    started = time.monotonic()
    summary = run(options, sandbox, print)
    board = summary.board.set_index("student")
    assert board.loc["ben", "status"] == "timeout", board.loc["ben", "message"]
    assert board.loc["ben", "message"] == (
        "the Slurm task reached its time limit of 1:00 before grading ended"
    )
    assert list(board.loc[["ana", "cy"], "status"]) == ["ok", "ok"]
    assert 60 <= time.monotonic() - started < 240
    with sqlite3.connect(course["out"] / "grades.sqlite") as db:
        query = "SELECT log_tail FROM attempts WHERE student = 'ben'"
        (log_tail,) = db.execute(query).fetchone()
    assert "DUE TO TIME LIMIT" in log_tail
    # On SIGTERM the task unwound: the sandbox ended the job and removed its workspace, which
    # a task killed outright would have left behind.
    assert _workspaces_holding(token) == []
    assert _processes_holding(token) == []


def _workspaces_holding(token: str) -> list[Path]:
    sources = Path(tempfile.gettempdir()).glob("grader-job-*/*/in/submission.py")
    return [path for path in sources if token in path.read_text()]


def _processes_holding(token: str) -> list[str]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            source = (entry / "root" / "job" / "in" / "submission.py").read_text()
        except OSError:
            continue
        if token in source:
            found.append(entry.name)
    return found


@pytest.mark.slow
def test_a_killed_head_started_again_collects_what_finished_and_submits_nothing(
    slurm_cluster: Path, sandbox: Sandbox, tiny_data_dir: Path, tmp_path: Path
) -> None:
    course = _course(tmp_path, tiny_data_dir)
    _kill_the_head_after_one_result(course)
    recorded = attempts(course["out"])
    assert len(recorded) == 1
    # While no head runs, the next task finishes; Slurm keeps running the one after.
    results = course["shared"] / "jobs"
    _wait_until(lambda: len(list(results.glob("*/*_result.pkl"))) >= 2)
    assert len(_tasks(course["out"])) == 3

    summary = run(_options(course), sandbox, print)
    assert (summary.reused, summary.graded) == (1, 2)
    assert sorted(attempts(course["out"])) == [(s, "ok") for s in STUDENTS]  # no duplicate
    tasks = _tasks(course["out"])
    assert len(tasks) == 3  # nothing submitted again
    assert len({job_id.split("_")[0] for _, job_id, _ in tasks}) == 1  # all of the first array
    assert [closed for _, _, closed in tasks] == ["result"] * 3
    again = run(_options(course), sandbox, print)
    assert (again.reused, again.graded) == (3, 0)


@pytest.mark.slow
def test_a_regrade_of_one_student_leaves_the_others_tasks_in_slurm(
    slurm_cluster: Path, sandbox: Sandbox, tiny_data_dir: Path, tmp_path: Path
) -> None:
    course = _course(tmp_path, tiny_data_dir)
    _kill_the_head_after_one_result(course)
    [(first, _)] = attempts(course["out"])
    second, third = (s for s in STUDENTS if s != first)

    regrade = RunRequest((second,), "regrade request #4")
    only = run(_options(course, request=regrade), sandbox, print)
    assert (only.reused, only.graded) == (0, 1)
    closed = {student: by for student, _, by in _tasks(course["out"])}
    assert closed == {first: "result", second: "result", third: None}  # still Slurm's
    rest = run(_options(course), sandbox, print)
    assert (rest.reused, rest.graded) == (2, 1)
    assert len(_tasks(course["out"])) == 3  # the third's task collected, never submitted again


def _kill_the_head_after_one_result(course: dict[str, Path]) -> None:
    """A head grading the course one task at a time, killed once a result is recorded."""
    command = [sys.executable, "-m", "grader.cli", "run", *map(str, _cli_args(course))]
    head = subprocess.Popen(
        [*command, "--slurm-array-parallelism", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_until(lambda: (course["out"] / "grades.sqlite").exists() and _attempts_or_none(course))
    head.send_signal(signal.SIGKILL)
    head.wait(timeout=60)


def _attempts_or_none(course: dict[str, Path]) -> bool:
    try:
        return len(attempts(course["out"])) >= 1
    except sqlite3.OperationalError:
        return False  # the schema is being created


def _wait_until(condition: object, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"waited {seconds} s in vain")


@pytest.mark.slow
def test_sandbox_layers_are_on_inside_slurm_tasks(
    slurm_cluster: Path, sandbox: Sandbox, tiny_data_dir: Path, tmp_path: Path
) -> None:
    course = _course(tmp_path, tiny_data_dir)
    for student in STUDENTS[1:]:
        shutil.rmtree(course["submissions"] / student)
    (course["submissions"] / "ana" / "har.py").write_text(READ_STATUS)
    summary = run(_options(course), sandbox, print)
    (message,) = summary.board["message"]
    found = re.search(r"STATUS(\{.*\})END", message)
    assert found, message
    status = json.loads(found.group(1))
    on = {layer.name for layer in sandbox.layers if layer.on}
    if require_sandbox():
        assert on == set(LAYER_NAMES)
    assert_status_shows(status, on)


@pytest.mark.slow
def test_a_task_slurm_refuses_is_a_crashed_row_and_the_run_ends(
    slurm_cluster: Path, tiny_data_dir: Path, tmp_path: Path
) -> None:
    course = _course(tmp_path, tiny_data_dir)
    result = CliRunner().invoke(main, ["run", *map(str, _cli_args(course)), "--partition", "none"])
    assert result.exit_code == 0, result.output
    board = pd.read_csv(course["out"] / "leaderboard.csv")
    assert list(board["status"]) == ["crashed"] * 3
    assert set(board["message"]) == {
        "Slurm refused the task: sbatch: error: Batch job submission failed: "
        "Invalid partition name specified"
    }
    assert _tasks(course["out"]) == []


@pytest.mark.slow
def test_the_slurm_benchmark_runs_both_ways_with_the_same_metrics(
    slurm_cluster: Path, tiny_data_dir: Path, tmp_path: Path
) -> None:
    course = _course(tmp_path, tiny_data_dir)
    done = subprocess.run(
        [sys.executable, "slurm.py", "--no-warmup",
         "--submissions", str(course["submissions"]), "--assignments", str(course["assignments"]),
         "--data-dir", str(course["data"]), "--cache-dir", str(course["cache"])],
        cwd=REPO / "bench", capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO / "bench")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("grader run submissions/ (3 rows), 1 round(s):", "  local  median ",
                 "  slurm  median ", "  time slurm / local: median ",
                 "metrics identical across ways: True"):  # fmt: skip
        assert line in done.stdout, done.stdout
