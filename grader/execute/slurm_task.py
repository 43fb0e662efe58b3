"""What a Slurm task runs on its node: grade one submission on each of its seeds with the same
sandbox and job protocol as a local run, and hand the Results back to the head.

submitit pickles `run_task` (by reference) and its NodeTask into the task's folder. A NodeTask is
plain data: the staged submission, the portable form of the head's grading context (the spec,
paths of the data cache entry and the hold-out set in the shared folder, the environment the
head keys results by), the seeds to grade and the sandbox flags; never labels or arrays.
As in a local run, only this grader process opens the test labels (in the shared data cache's
private folder); student code runs only in the sandbox's jobs, which see their job folder alone.
"""

from __future__ import annotations

import platform
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

from grader.core.errors import UserError
from grader.core.machine import DeviceError
from grader.core.results import Environment, Result
from grader.core.submission import Submission
from grader.jobs.context import GradingContext, PortableContext
from grader.jobs.environment import environment
from grader.jobs.grade import grade
from grader.jobs.seeds import STOPS_THE_SEEDS
from grader.sandbox.box import Sandbox, SandboxError, SandboxOptions
from grader.sandbox.probe import Layer
from grader.sandbox.workspace import remove_stale_workspaces

_TERMINATED = threading.Event()  # Slurm sent SIGTERM: the task ends without a result


@dataclass(frozen=True)
class NodeTask:
    submission: Submission  # its files staged in the shared folder
    context: PortableContext  # its weights_dir in the shared folder, for the head to take
    to_grade: tuple[int, ...]  # the seeds this task grades, in turn
    sandbox: SandboxOptions  # as `grader run` was asked on the head


@dataclass(frozen=True)
class NodeOutcome:
    results: tuple[Result, ...]  # one a seed graded; none when the sandbox refused
    node: str
    layers: tuple[Layer, ...] = ()  # the sandbox's layers on this node, as data
    refusal: str = ""  # why the sandbox would not run the job (--require-sandbox), if it would not


class TaskError(UserError):
    """The node cannot grade as the head asked: another torch version or device."""


def run_task(task: NodeTask) -> NodeOutcome:
    """The task's whole work on its node. A submission's failure is a Result like any other."""
    _leave_stopping_to_slurm()
    node = platform.node()
    ctx = task.context.restore(_environment(task.context.context.environment, node))
    remove_stale_workspaces()  # of tasks Slurm killed on this node before they could clean up
    layers: tuple[Layer, ...] = ()
    try:
        with task.sandbox.sandbox() as sandbox:
            layers = tuple(sandbox.layers)
            results = _grade_seeds(task, ctx, sandbox)
    except SandboxError as exc:
        return NodeOutcome((), node, layers, refusal=str(exc))
    if _stopped_by_slurm():  # the job may have died of Slurm's signal before the task heard it
        raise SystemExit(128 + signal.SIGTERM)
    return NodeOutcome(results, node, layers)


def _grade_seeds(task: NodeTask, ctx: GradingContext, sandbox: Sandbox) -> tuple[Result, ...]:
    """The task's seeds in turn, as a local run grades them: when the first fails so
    (STOPS_THE_SEEDS), the task ends there and the head reads the others as not graded."""
    first, *rest = task.to_grade
    results = [grade(task.submission, ctx.for_seed(first), sandbox)]
    if results[0].status not in STOPS_THE_SEEDS:
        results += [grade(task.submission, ctx.for_seed(seed), sandbox) for seed in rest]
    return tuple(results)


def _environment(expected: Environment, node: str) -> Environment:
    """This node's environment, as a local run here would find it (its CPU is recorded with the
    result); its torch and device must be the ones the head keys results by."""
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
