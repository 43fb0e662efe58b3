"""What a Slurm task runs on its node: grade one submission on each of its seeds with the same
sandbox and job protocol as a local run, and hand the Results back to the head.

submitit pickles `run_task` (by reference) and its NodeTask into the task's folder. A NodeTask is
plain data: paths inside the shared folder (the staged submission, the spec, the data cache
entry, the hold-out set), the seed, the environment the head keys results by, and the sandbox
flags; never labels or arrays.
As in a local run, only this grader process opens the test labels (in the shared data cache's
private folder); student code runs only in the sandbox's jobs, which see their job folder alone.
"""

from __future__ import annotations

import platform
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

from grader.core.machine import DeviceError
from grader.core.results import Environment, Mode, Result
from grader.core.spec import load_spec
from grader.core.submission import Submission
from grader.data.cache import PreparedData
from grader.data.holdout import load_staged
from grader.jobs.grade import GradingContext, grade
from grader.jobs.seeds import seeded
from grader.sandbox.box import Sandbox, SandboxError
from grader.sandbox.workspace import remove_stale_workspaces

_TERMINATED = threading.Event()  # Slurm sent SIGTERM: the task ends without a result


@dataclass(frozen=True)
class SandboxFlags:
    """How each task builds its sandbox: as `grader run` was asked to on the head."""

    enabled: bool = True
    require: bool = False
    warm: bool = True


@dataclass(frozen=True)
class NodeTask:
    submission: Submission  # its files staged in the shared folder
    spec_path: Path  # a copy in the shared folder
    spec_digest: str
    to_grade: tuple[int, ...]  # the seeds this task grades, in turn
    seeds: tuple[int, ...]  # the head's --seeds (empty: the spec's), as the reuse key has them
    data: PreparedData  # a cache entry in the shared folder
    holdout: Path | None  # the spec's hold-out set, saved in the shared folder
    holdout_checksum: str
    holdout_description: str
    reviewed: frozenset[tuple[str, str]]  # this student's reviewed rows, as the head read them
    environment: Environment  # the head's: the torch version and device results are keyed by
    mode: Mode
    timeout_seconds: float | None
    verify_determinism: bool
    weights_dir: Path  # in the shared folder: where the kept weights go, for the head to take
    sandbox: SandboxFlags


@dataclass(frozen=True)
class NodeOutcome:
    results: tuple[Result, ...]  # one a seed graded; none when the sandbox refused
    node: str
    layers: tuple[str, ...] = ()  # the sandbox's layers on this node, as `grader sandbox` shows
    refusal: str = ""  # why the sandbox would not run the job (--require-sandbox), if it would not


class TaskError(Exception):
    """The node cannot grade as the head asked: another spec, torch version or device."""


def run_task(task: NodeTask) -> NodeOutcome:
    """The task's whole work on its node. A submission's failure is a Result like any other."""
    _leave_stopping_to_slurm()
    node = platform.node()
    ctx = _context(task, node)
    remove_stale_workspaces()  # of tasks Slurm killed on this node before they could clean up
    layers: tuple[str, ...] = ()
    flags = task.sandbox
    try:
        with Sandbox(enabled=flags.enabled, require=flags.require, warm=flags.warm) as sandbox:
            layers = tuple(str(layer) for layer in sandbox.layers)
            results = tuple(grade(task.submission, seeded(ctx, s), sandbox) for s in task.to_grade)
    except SandboxError as exc:
        return NodeOutcome((), node, layers, refusal=str(exc))
    if _stopped_by_slurm():  # the job may have died of Slurm's signal before the task heard it
        raise SystemExit(128 + signal.SIGTERM)
    return NodeOutcome(results, node, layers)


def _context(task: NodeTask, node: str) -> GradingContext:
    spec = load_spec(task.spec_path)
    if spec.digest != task.spec_digest:
        raise TaskError(f"node {node}: {task.spec_path} is not the spec the head graded with")
    holdout = (
        None
        if task.holdout is None
        else load_staged(task.holdout, task.holdout_checksum, task.holdout_description)
    )
    return GradingContext(
        spec=spec,
        data=task.data,
        environment=_environment(task.environment, node),
        mode=task.mode,
        timeout_seconds=task.timeout_seconds,
        weights_dir=task.weights_dir,
        verify_determinism=task.verify_determinism,
        holdout=holdout,
        reviewed=task.reviewed,
        seeds=task.seeds,
    )


def _environment(expected: Environment, node: str) -> Environment:
    """This node's environment, as a local run here would find it (its CPU is recorded with the
    result); its torch and device must be the ones the head keys results by."""
    # The task is an entry point, like the command line: it may use the library's own check.
    from grader.api import environment

    try:
        here = environment(expected.device)
    except DeviceError as exc:
        raise TaskError(f"node {node}: {exc}") from None
    if here.torch_version != expected.torch_version:
        raise TaskError(
            f"node {node} has torch {here.torch_version}, the head {expected.torch_version}: "
            "install the same environment on both"
        )
    return here


def _leave_stopping_to_slurm() -> None:
    """At the time limit (or on scancel) Slurm sends SIGTERM to every process of the task, the
    job's too, then SIGKILL KillWait seconds later (its early warning is a signal every process
    ignores, see slurm.WARNING_SIGNAL). The job dying of it is no verdict on the student:
    unwinding lets the sandbox end the job and remove its cgroup and workspace, and as SystemExit
    is no Exception, submitit writes no result and the head reads Slurm's state instead."""
    signal.signal(signal.SIGTERM, _unwind)


def _stopped_by_slurm() -> bool:
    return _TERMINATED.is_set()


def _unwind(signum: int, _frame: FrameType | None) -> NoReturn:
    _TERMINATED.set()
    raise SystemExit(128 + signum)
