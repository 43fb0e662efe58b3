"""How one job phase starts: as a fresh process wrapped in its layers (cold), or forked from a
warm process that applies them itself. Both give the child the same view and arguments."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from grader import protocol
from grader.protocol import Phase
from grader.sandbox import argv, supervise, view
from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.probe import Machine, Setup
from grader.sandbox.supervise import Limits, Running
from grader.sandbox.verify import Promise
from grader.sandbox.warm import Zygote
from grader.sandbox.zygote import Request


@dataclass(frozen=True)
class Job:
    """One phase, with everything its sandbox decided for it."""

    setup: Setup
    phase: Phase
    in_dir: Path
    out_dir: Path
    log: Path
    limits: Limits
    uid: int | None
    cgroup: JobCgroup | None
    promise: Promise
    env: dict[str, str]  # the child's whole environment


def start_cold(machine: Machine, job: Job, log: int, attest_fd: int, go_fd: int) -> Running:
    command = _command(machine, job, attest_fd, go_fd)
    if job.cgroup is not None:
        command = [*argv.enter_cgroup(job.cgroup.procs_files), *command]
    return supervise.start(command, job.env, log, (attest_fd, go_fd))


def start_warm(zygote: Zygote, job: Job, log: int, attest_fd: int, go_fd: int) -> Running:
    forked = job.setup.mode == "forked"
    in_dir, out_dir = (
        (protocol.VIEW_IN, protocol.VIEW_OUT) if forked else (str(job.in_dir), str(job.out_dir))
    )
    root = job.in_dir.parent / "root"  # an empty folder to mount the view's root on
    if forked:
        root.mkdir(mode=0o700, exist_ok=True)
    request = Request(
        phase=str(job.phase),
        in_dir=in_dir,
        out_dir=out_dir,
        env=job.env,
        cgroup_procs=[str(p) for p in job.cgroup.procs_files] if job.cgroup else [],
        uid=job.uid,
        mounts=view.to_data(plan(job)) if forked else None,
        root=str(root),
    )
    return zygote.start(request, log, attest_fd, go_fd)


def plan(job: Job) -> list[view.Mount]:
    """The job's view: the interpreter, this package and libseccomp, and its own folders."""
    return view.plan(
        visible=argv.outermost([*argv.python_paths(), *_library(job.setup)]),
        binds=[
            (str(job.in_dir), protocol.VIEW_IN, False),
            (str(job.out_dir), protocol.VIEW_OUT, True),
        ],
        tmp_bytes=job.limits.tmp_bytes,
    )


def rlimits(limits: Limits, own_uid: bool) -> dict[str, int]:
    found = {
        "RLIMIT_DATA": limits.memory_bytes,
        "RLIMIT_CPU": int(limits.timeout_seconds * 2) + 10,
        "RLIMIT_FSIZE": limits.max_file_bytes,
        "RLIMIT_NOFILE": limits.max_open_files,
        "RLIMIT_CORE": 0,
    }
    if own_uid:
        # RLIMIT_NPROC counts every process of the uid, so it is only meaningful per job uid.
        found["RLIMIT_NPROC"] = limits.max_processes
    return found


def _command(machine: Machine, job: Job, attest_fd: int, go_fd: int) -> list[str]:
    setup = job.setup
    in_dir, out_dir = str(job.in_dir), str(job.out_dir)
    drop = [] if job.uid is None else argv.setpriv(_need(machine.setpriv), job.uid)
    python = sys.executable
    if setup.mode == "bwrap":
        prefix = argv.bwrap(_need(machine.bwrap), root=machine.root, env=job.env, mounts=plan(job))
        in_dir, out_dir = protocol.VIEW_IN, protocol.VIEW_OUT
    elif setup.mode == "unshare":
        keep = argv.outermost([*argv.python_paths(), *_library(setup), in_dir])
        prefix = [
            *argv.unshare(_need(machine.unshare)),
            *argv.private_view(
                python,
                job.limits.tmp_bytes,
                hide=argv.untraversable([*keep, out_dir]),
                keep=keep,
                writable=[out_dir],
            ),
        ]
    else:
        prefix = []
    args = protocol.child_args(job.phase, in_dir, out_dir, attest_fd, go_fd)
    return [*prefix, *drop, *protocol.child_argv(python, args)]


def _library(setup: Setup) -> list[str]:
    return [setup.seccomp_library] if setup.seccomp_library else []


def _need(program: str | None) -> str:
    assert program is not None, "the setup names a tool this machine lacks"
    return program
