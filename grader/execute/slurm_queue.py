"""Slurm's client commands, as the grading head uses them: where tasks stand, cancelling them,
and what a task that ended without a result means for its row.

Besides the sandbox, this is the only grader code that starts processes (squeue, sacct, scancel;
submitit runs sbatch): Slurm's own tools on the head machine, never student code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Collection
from dataclasses import dataclass

from grader.core.errors import UserError
from grader.core.results import Status

COMMANDS = ("sbatch", "srun", "squeue", "scancel")
QUERY_SECONDS = 60
# States in which a task may still write its result; any other state is final.
ACTIVE = frozenset(
    {
        "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED",
        "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED",
        "RESV_DEL_HOLD",
    }
)  # fmt: skip
TIME_LIMIT_STATES = frozenset({"TIMEOUT", "DEADLINE"})


class SlurmError(UserError):
    """Slurm cannot be used as asked: no Slurm commands here, an unusable shared folder."""


@dataclass(frozen=True)
class TaskState:
    state: str  # Slurm's name for it: PENDING, RUNNING, COMPLETED, TIMEOUT, NODE_FAIL, ...
    time_limit: str = ""  # as Slurm prints it ("2:00", "1-00:00:00"); "" when unknown

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def require_commands() -> None:
    missing = [command for command in COMMANDS if shutil.which(command) is None]
    if missing:
        raise SlurmError(
            f"--executor slurm: {', '.join(missing)} not found; run the grader on a machine "
            "that submits jobs to Slurm"
        )


def states(job_ids: Collection[str]) -> dict[str, TaskState] | None:
    """Slurm's view of these tasks ("<array>_<index>" or "<job>"): squeue knows what the
    controller holds (finished tasks too, for MinJobAge seconds); sacct, where the cluster keeps
    accounting, knows older ones. A task neither knows is left out. None when squeue fails."""
    found = _squeue()
    if found is None:
        return None
    missing = [job for job in job_ids if job not in found]
    if missing:
        found.update(_sacct(missing))
    return {job: found[job] for job in job_ids if job in found}


def cancel(job_ids: Collection[str]) -> None:
    """Cancel tasks; those already finished are not an error."""
    if job_ids:
        _run(["scancel", *sorted(job_ids)])


def failure(state: TaskState | None) -> tuple[Status, str]:
    """The status and message of a task that ended without writing its result."""
    if state is None:
        return Status.CRASHED, (
            "the Slurm task ended without a result, and Slurm no longer knows its state"
        )
    if state.state in TIME_LIMIT_STATES:
        limit = f" of {state.time_limit}" if state.time_limit else ""
        return Status.TIMEOUT, f"the Slurm task reached its time limit{limit} before grading ended"
    if state.state == "OUT_OF_MEMORY":
        return Status.MEMORY, (
            "the Slurm task used more memory than it asked Slurm for before grading ended"
        )
    return Status.CRASHED, f"the Slurm task ended without a result (Slurm state {state.state})"


def parse_table(text: str) -> dict[str, TaskState]:
    """Lines of "id|state|time limit", as squeue --format and sacct --parsable2 print them;
    sacct's steps (123_4.batch) are skipped and "CANCELLED by 0" is read as CANCELLED."""
    found = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2 or not fields[0] or "." in fields[0] or not fields[1]:
            continue
        limit = fields[2] if len(fields) > 2 else ""
        found[fields[0]] = TaskState(fields[1].split()[0], limit)
    return found


def _squeue() -> dict[str, TaskState] | None:
    done = _run([
        "squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%l",
        f"--user={os.getuid()}",
    ])  # fmt: skip
    return None if done is None or done.returncode != 0 else parse_table(done.stdout)


def _sacct(job_ids: list[str]) -> dict[str, TaskState]:
    done = _run([
        "sacct", "--noheader", "--parsable2", "--allocations",
        "--format=JobID,State,Timelimit", f"--jobs={','.join(job_ids)}",
    ])  # fmt: skip
    # Without accounting sacct fails ("Slurm accounting storage is disabled"): nothing known.
    return {} if done is None or done.returncode != 0 else parse_table(done.stdout)


def _run(command: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=QUERY_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
