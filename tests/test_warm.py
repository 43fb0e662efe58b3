"""The warm path: jobs forked from a process that imported torch once give the same numbers as
fresh processes, start from a clean slate every time, and the warm process holds nothing of the
grader's."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from support.course import without_baselines
from support.grading import GOOD_HAR, TINY_TEST, TINY_TRAIN, GradeSource
from support.layers import require_sandbox
from support.paths import ASSIGNMENTS

from grader.api import RunOptions, run
from grader.core.results import Result
from grader.sandbox.box import Sandbox
from grader.sandbox.warm import ZygotePool

pytestmark = pytest.mark.slow
SAME = ["status", "test_accuracy", "train_accuracy", "gap", "params", "weights_sha256", "epochs"]

BATCHNORM_DROPOUT = """
import torch
from torch import nn

HPARAMS = {"epochs": 3, "batch_size": 16, "lr": 0.003, "optimizer": "adamw",
           "weight_decay": 0.01}


def build_model(input_shape, num_classes):
    return nn.Sequential(nn.Linear(input_shape[0], 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(32, num_classes))
"""
CUSTOM_TRAIN = (
    GOOD_HAR
    + """

def train(model, train_set, hparams):
    inputs, labels = train_set.tensors
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        for batch in torch.randperm(len(inputs), generator=generator).split(20):
            loss = torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
"""
)


@pytest.fixture(scope="module")
def warm(sandbox: Sandbox) -> Sandbox:
    if not sandbox.warm:
        if require_sandbox():
            pytest.fail(f"the warm path should work here: {sandbox.launch}")
        pytest.skip(f"no warm path on this machine: {sandbox.launch}")
    return sandbox


def _same(result: Result) -> list[object]:
    return [getattr(result, key) for key in SAME]


@pytest.mark.parametrize(
    "source", [GOOD_HAR, BATCHNORM_DROPOUT, CUSTOM_TRAIN], ids=["mlp", "batchnorm", "train"]
)
def test_warm_and_cold_give_bit_identical_weights_and_metrics(
    source: str, warm: Sandbox, cold_sandbox: Sandbox, grade_source: GradeSource
) -> None:
    first = grade_source(source, student="warm1", sandbox=warm)
    again = grade_source(source, student="warm2", sandbox=warm)
    cold = grade_source(source, student="cold", sandbox=cold_sandbox)
    assert first.status == "ok", first.message
    assert _same(first) == _same(again) == _same(cold)


POLLUTE = """
import os, random, subprocess, sys
import numpy, torch
import grader.child.training

try:
    open("/tmp/left-by-an-earlier-job", "w").write("x")
except PermissionError:
    pass  # a job without a /tmp of its own may not write the host's (Landlock)
grader.child.training.PREDICT_BATCH = 3
torch.set_num_threads(2)
os.environ["LEFT_BY_AN_EARLIER_JOB"] = "1"
sys.modules["left_by_an_earlier_job"] = sys
random.seed(123)
numpy.random.seed(123)
torch.manual_seed(123)
subprocess.Popen(["sleep", "SLEEP_SECONDS"], start_new_session=True)
raise RuntimeError("polluted")
"""
# The polluter's sleep, in seconds: this test process's own, so another test run's is not it.
SLEEP_SECONDS = str(1000 + os.getpid())
INSPECT = """
import os, sys
import torch
import grader.child.training

HPARAMS = {"epochs": 1, "batch_size": 32, "lr": 0.01}


def build_model(input_shape, num_classes):
    left = []
    if os.path.exists("/tmp/left-by-an-earlier-job"):
        left.append("a file in /tmp")
    if grader.child.training.PREDICT_BATCH != 1024:
        left.append("module state")
    if torch.get_num_threads() != 1:
        left.append("torch threads")
    if "LEFT_BY_AN_EARLIER_JOB" in os.environ:
        left.append("an environment variable")
    if "left_by_an_earlier_job" in sys.modules:
        left.append("a module")
    # The polluter's sleep: without a pid namespace of its own (a non-root grader without
    # bubblewrap) a job sees the machine's processes, but none an earlier job started. Its
    # length is this test run's own, so another grader's jobs on the machine do not count.
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if command.split(b"\\0")[:2] == [b"sleep", b"SLEEP_SECONDS"]:
            left.append(f"process {pid}")
    raise RuntimeError("LEFT: " + ", ".join(left) if left else "CLEAN")
"""


def _polluter() -> str:
    return POLLUTE.replace("SLEEP_SECONDS", SLEEP_SECONDS)


def test_a_job_sees_nothing_an_earlier_job_left(
    warm: Sandbox, grade_source: GradeSource, tmp_path: Path
) -> None:
    polluted = grade_source(_polluter(), student="polluter", sandbox=warm)
    assert polluted.message.startswith("train: RuntimeError: polluted"), polluted.message
    inspected = grade_source(
        INSPECT.replace("SLEEP_SECONDS", SLEEP_SECONDS), student="inspector", sandbox=warm
    )
    assert inspected.message.startswith("train: RuntimeError: CLEAN"), inspected.message


def test_rng_state_of_an_earlier_job_does_not_change_the_next(
    warm: Sandbox, grade_source: GradeSource
) -> None:
    alone = grade_source(GOOD_HAR, student="alone", sandbox=warm)
    grade_source(_polluter(), student="polluter", sandbox=warm)
    after = grade_source(GOOD_HAR, student="after", sandbox=warm)
    assert _same(alone) == _same(after)


def _warm_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"grader.sandbox.zygote" in cmdline:
                found.append(int(entry.name))
    return found


def test_the_warm_process_holds_no_labels_and_no_grader_state(
    warm: Sandbox, grade_source: GradeSource, tiny_har: object
) -> None:
    grade_source(GOOD_HAR, student="someone", sandbox=warm)
    pids = _warm_processes()
    assert pids, "a warm process should be running between jobs"
    private = str(tiny_har.private_dir)  # type: ignore[attr-defined]
    try:
        Path(f"/proc/{pids[0]}/maps").read_text()
    except PermissionError:  # it is non-dumpable: only root (CAP_SYS_PTRACE) may look inside
        pytest.skip("the warm process is non-dumpable: only root may read its memory map")
    for pid in pids:
        proc = Path(f"/proc/{pid}")
        mapped = (proc / "maps").read_text()
        opened = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        environment = (proc / "environ").read_bytes().decode(errors="replace")
        assert private not in mapped and "test_labels" not in mapped
        assert not any(private in target or "labels" in target for target in opened), opened
        assert "GRADER_" not in environment and private not in environment
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        assert "labels" not in cmdline and private not in cmdline


@pytest.fixture(scope="module")
def small_course(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from support.data import write_tiny_har

    root = tmp_path_factory.mktemp("warm-course")
    write_tiny_har(root / "data", TINY_TRAIN, TINY_TEST)
    (root / "assignments").mkdir()
    spec = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    spec = spec.replace("max_epochs = 100", "max_epochs = 5")
    (root / "assignments" / "har.toml").write_text(spec)
    for i, source in enumerate([GOOD_HAR, BATCHNORM_DROPOUT, CUSTOM_TRAIN, GOOD_HAR]):
        (root / "submissions" / f"s{i}").mkdir(parents=True)
        text = source.replace('"lr": 0.01', f'"lr": 0.0{i + 1}') if i == 3 else source
        (root / "submissions" / f"s{i}" / "har.py").write_text(textwrap.dedent(text))
    return {"root": root}


def _board(course: Path, out: Path, workers: int, sandbox: Sandbox) -> pd.DataFrame:
    options = RunOptions(
        submissions=course / "submissions",
        out=out,
        assignments=course / "assignments",
        data_dir=course / "data",
        cache_dir=course / "cache",
        workers=workers,
    )
    board = run(options, sandbox, lambda _: None).board
    return board[["student", *SAME]].reset_index(drop=True)


@pytest.fixture(scope="module")
def reference_board(
    small_course: dict[str, Path], cold_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    """Four submissions graded cold by one worker."""
    return _board(small_course["root"], tmp_path_factory.mktemp("reference"), 1, cold_sandbox)


@pytest.mark.parametrize(("workers", "way"), [(1, "warm"), (2, "warm"), (2, "cold")])
def test_a_batch_is_the_same_with_one_or_two_workers_warm_or_cold(
    small_course: dict[str, Path],
    reference_board: pd.DataFrame,
    workers: int,
    way: str,
    warm: Sandbox,
    cold_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    sandbox = warm if way == "warm" else cold_sandbox
    board = _board(small_course["root"], tmp_path / "out", workers, sandbox)
    assert (board["status"] == "ok").all(), board
    pd.testing.assert_frame_equal(board, reference_board)


def test_warm_processes_started_ahead_are_the_ones_jobs_are_lent() -> None:
    already = _started_here()  # other tests' sandboxes may hold some
    with ZygotePool(preload=False) as pool:
        pool.prestart(threads=1, count=2)
        ahead = _started_here() - already
        assert len(ahead) == 2
        pool.prestart(threads=1, count=2)  # as many are started already: none more
        with pool.lend(1), pool.lend(1):
            assert _started_here() - already == ahead
        pool.prestart(threads=2, count=1)  # another thread count: a process of its own
        assert len(_started_here() - already - ahead) == 1


def _started_here() -> set[int]:
    """The warm processes this test process started (its children running the zygote)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # not a process, or gone meanwhile
        if ppid == os.getpid() and b"grader.sandbox.zygote" in command:
            found.add(int(entry.name))
    return found
