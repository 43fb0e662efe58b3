"""How one job phase starts: as a fresh process wrapped in its layers (cold), or forked from a
warm process that applies them itself. Both give the child the same view and arguments."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from grader import protocol
from grader.protocol import LandlockRules, Phase
from grader.sandbox import argv, supervise, view
from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.probe import Machine, Namespacing, Setup
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

    @property
    def own_view(self) -> bool:
        """Whether the job sees its own view (/job/in, /job/out, a private /tmp), not the
        host's filesystem."""
        return self.setup.mode is not Namespacing.NONE

    @property
    def tmp_dir(self) -> Path:
        """The job's temp folder on the host, where it has no private /tmp of its own."""
        return self.in_dir.parent / "tmp"


def start_cold(machine: Machine, job: Job, log: int, attest_fd: int, go_fd: int) -> Running:
    command = _command(machine, job, attest_fd, go_fd)
    if job.cgroup is not None:
        command = [*argv.enter_cgroup(job.cgroup.procs_files), *command]
    return supervise.start(command, job.env, log, (attest_fd, go_fd))


def start_warm(zygote: Zygote, job: Job, log: int, attest_fd: int, go_fd: int) -> Running:
    forked = job.setup.mode is Namespacing.FORKED
    in_dir, out_dir = _job_paths(job)
    request = Request(
        phase=str(job.phase),
        in_dir=in_dir,
        out_dir=out_dir,
        env=job.env,
        cgroup_procs=[str(p) for p in job.cgroup.procs_files] if job.cgroup else [],
        uid=job.uid,
        mounts=view.to_data(plan(job)) if forked else None,
        root=str(_root(job)) if forked else "",
        cwd="/tmp" if job.own_view else str(job.tmp_dir),
    )
    return zygote.start(request, log, attest_fd, go_fd)


def plan(job: Job) -> list[view.Mount]:
    """The job's view: the interpreter, this package and libseccomp, and its own folders; in
    mode none, the same paths where they are on the host (for Landlock's rules)."""
    in_dir, out_dir = _job_paths(job)
    binds = [(str(job.in_dir), in_dir, False), (str(job.out_dir), out_dir, True)]
    if not job.own_view:
        binds.append((str(job.tmp_dir), str(job.tmp_dir), True))
    return view.plan(
        visible=argv.outermost([*argv.python_paths(), *_library(job.setup)]),
        binds=binds,
        tmp_bytes=job.limits.tmp_bytes,
    )


def landlock_rules(job: Job) -> LandlockRules | None:
    """What the job may reach, enforced by the kernel inside whichever view it has: the view's
    read-only binds, its writable folders and its devices. Where the job sees the host's
    filesystem, /proc and /sys are the host's (read-only) and /tmp and /dev/shm are left out."""
    if not job.setup.landlock_abi:
        return None
    mounts = plan(job)
    binds = [m for m in mounts if m.kind == "bind"]
    own = ("/tmp", "/dev/shm") if job.own_view else ()
    # Not /dev/tty: through it a job could write to the TA's terminal.
    devices = [f"/dev/{d}" for d in view.DEVICES if d != "tty" and os.path.exists(f"/dev/{d}")]
    devices += [m.target for m in mounts if m.kind == "device" and os.path.exists(m.source)]
    return LandlockRules(
        read=(*(m.target for m in binds if not m.writable), "/proc",
              *(() if job.own_view else ("/sys",))),
        write=(*(m.target for m in binds if m.writable), *own),
        devices=tuple(devices),
    )  # fmt: skip


def _job_paths(job: Job) -> tuple[str, str]:
    """Where the job finds its in and out folders: in its own view, or on the host."""
    if job.own_view:
        return protocol.VIEW_IN, protocol.VIEW_OUT
    return str(job.in_dir), str(job.out_dir)


def _root(job: Job) -> Path:
    """An empty folder to mount the view's root on."""
    root = job.in_dir.parent / "root"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def rlimits(limits: Limits, own_uid: bool) -> dict[str, int]:
    found = {
        "RLIMIT_DATA": limits.memory_bytes,
        # The spec's CPU-time budget, else a cap the wall-clock timeout reaches first.
        "RLIMIT_CPU": (
            math.ceil(limits.cpu_seconds)
            if limits.cpu_seconds
            else int(limits.timeout_seconds * 2) + 10
        ),
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
    drop = [] if job.uid is None else argv.setpriv(_need(machine.setpriv), job.uid)
    python = sys.executable
    if setup.mode is Namespacing.BWRAP:
        prefix = argv.bwrap(_need(machine.bwrap), root=machine.root, env=job.env, mounts=plan(job))
    else:
        assert setup.mode is Namespacing.UNSHARE, (
            "a job without a view of its own is forked (start_warm)"
        )
        mounts = json.dumps(view.to_data(plan(job)))
        prefix = [
            *argv.unshare(_need(machine.unshare)),
            *argv.private_view(python, str(_root(job)), mounts),
        ]
    args = protocol.child_args(job.phase, *_job_paths(job), attest_fd, go_fd)
    return [*prefix, *drop, *protocol.child_argv(python, args)]


def _library(setup: Setup) -> list[str]:
    return [setup.seccomp_library] if setup.seccomp_library else []


def _need(program: str | None) -> str:
    assert program is not None, "the setup names a tool this machine lacks"
    return program
