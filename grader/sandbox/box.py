"""The sandbox: student code runs in a child process wrapped in layers, each proven on or off.

- namespaces: bubblewrap gives the job no network, its own pid space, and a read-only view of
              only its files plus a size-capped private /tmp (`unshare` is the weaker fallback);
- identity:   the job runs as an unprivileged uid of its own, claimed per job;
- limits:     rlimits on memory, CPU time, processes, file size and open files, a wall-clock
              timeout, an output-size watchdog, and a sweep that kills whatever the job left;
- cgroups:    one memory budget for all of a job's processes, a CPU quota, a process cap;
- seccomp:    a filter that denies non-unix sockets, ptrace, mounts, new namespaces and the like.

A layer found on this machine is promised only after a probe job has shown it from inside, and
every job shows its layers again before student code runs (see grader.protocol). A layer
that silently fails to apply is worse than one known to be missing.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader import protocol
from grader.core.files import MB
from grader.protocol import Attestation, Confinement, JobConfig, Phase, Task
from grader.sandbox import argv, leases, reap, supervise
from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.probe import Machine, Setup, own_namespaces
from grader.sandbox.supervise import JobOutcome, Limits
from grader.sandbox.verify import Promise, breaches
from grader.sandbox.workspace import job_folders, workspace

PROBE_LIMITS = Limits(
    timeout_seconds=60,
    memory_bytes=1 << 30,
    max_processes=64,
    max_file_bytes=MB,
    max_open_files=64,
    max_output_bytes=MB,
)


OPTIONAL_LAYERS = ("identity", "cgroups", "seccomp")  # a setup can do without these


@dataclass(frozen=True)
class _Job:
    setup: Setup
    phase: Phase
    in_dir: Path
    out_dir: Path
    log: Path
    limits: Limits
    uid: int | None
    cgroup: JobCgroup | None
    promise: Promise


class SandboxError(Exception):
    """The sandbox cannot give the isolation that was asked for."""


class Sandbox:
    """Runs `python -m grader.child` jobs with every isolation layer this machine can prove."""

    def __init__(self, *, enabled: bool = True, require: bool = False) -> None:
        self._machine = Machine.detect(enabled)
        self._namespaces = own_namespaces()
        self._active: dict[int, int | None] = {}  # process group -> job uid, for kill_all
        self._lock = threading.Lock()
        self._job_numbers = itertools.count()
        self._setup, notes = self._prove()
        self.layers = self._machine.describe(self._setup, notes)
        self.required = require
        weak = [layer.name for layer in self.layers if not layer.on]
        if require and weak:
            raise SandboxError("--require-sandbox: isolation layers off: " + ", ".join(weak))

    @property
    def mode(self) -> str:
        """How namespaces are made: "bwrap", "unshare" or "none"."""
        return self._setup.mode

    @property
    def identity(self) -> bool:
        """Whether jobs run as a uid of their own."""
        return self._setup.identity

    def weak_warning(self) -> str | None:
        off = [layer for layer in self.layers if not layer.on]
        if not off:
            return None
        return "isolation is weak on this machine, student code is less contained: " + "; ".join(
            str(layer) for layer in off
        )

    def run(
        self, task: Task, in_dir: Path, out_dir: Path, log_path: Path, limits: Limits
    ) -> JobOutcome:
        """Run one phase of one job to completion; never raises for anything the child does."""
        return self._run(self._setup, task, in_dir, out_dir, log_path, limits)

    def kill_all(self) -> None:
        """Stop every running job at once (the grader was interrupted)."""
        with self._lock:
            running = dict(self._active)
        for pid, uid in running.items():
            reap.sweep(pid, uid)

    # -- proving the layers ---------------------------------------------------------------

    def _prove(self) -> tuple[Setup, dict[str, str]]:
        """The strongest setup whose probe job shows every promised layer from inside."""
        notes: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for setup in self._machine.setups():
            for _ in range(4):  # each round leaves out the layers the last probe lacked
                problems = self._probe(setup)
                droppable = [(layer, p) for layer, p in problems if layer in OPTIONAL_LAYERS]
                if not droppable or len(droppable) < len(problems):
                    break
                for layer, problem in droppable:
                    notes[layer] = f"promised, but a probe job lacked it: {problem}"
                    setup = setup.without(layer)
            if not problems:
                return setup, notes
            notes["namespaces"] = f"{setup.mode} could not run a job: " + "; ".join(
                problem for _, problem in problems
            )
        raise SandboxError("cannot start a job at all: " + "; ".join(p for _, p in problems))

    def _probe(self, setup: Setup) -> list[tuple[str, str]]:
        with workspace() as folder:
            in_dir, out_dir = job_folders(folder)
            task = Task(Phase.PROBE)
            outcome = self._run(setup, task, in_dir, out_dir, folder / "log", PROBE_LIMITS)
        why = (outcome.log_tail.strip().splitlines() or [""])[-1]
        return [
            (layer, f"{problem} ({why})" if layer == "start" and why else problem)
            for layer, problem in outcome.breaches
        ]

    # -- one job ----------------------------------------------------------------------------

    def _run(
        self, setup: Setup, task: Task, in_dir: Path, out_dir: Path, log: Path, limits: Limits
    ) -> JobOutcome:
        with self._job_uid(setup) as uid, self._job_cgroup(setup, limits) as cgroup:
            promise = Promise(
                rlimits=_rlimits(limits, uid is not None),
                seccomp=setup.seccomp_library is not None,
                uid=uid,
                separate_from=self._namespaces if setup.mode != "none" else None,
            )
            config = JobConfig(task, Confinement(promise.rlimits, setup.seccomp_library))
            (in_dir / protocol.CONFIG).write_text(config.to_json())
            for path in in_dir.iterdir():
                path.chmod(0o644)
            if uid is not None:
                os.chown(out_dir, uid, uid)
            job = _Job(setup, task.phase, in_dir, out_dir, log, limits, uid, cgroup, promise)
            return self._supervise(job)

    def _supervise(self, job: _Job) -> JobOutcome:
        attest_r, attest_w = os.pipe()
        go_r, go_w = os.pipe()
        command = self._command(job, attest_w, go_r)
        if job.cgroup is not None:
            command = [*argv.enter_cgroup(job.cgroup.procs_files), *command]
        started = time.monotonic()
        deadline = started + job.limits.timeout_seconds
        env = protocol.child_env(job.limits.threads)
        try:
            process = supervise.start(command, env, job.log, (attest_w, go_r))
        finally:
            os.close(attest_w)
            os.close(go_r)
        with self._lock:
            self._active[process.pid] = job.uid
        found: list[tuple[str, str]] = []

        def check(attestation: Attestation | None) -> str | None:
            found.extend(breaches(attestation, job.promise))
            if not found and job.cgroup is not None and not job.cgroup.pids():
                found.append(("cgroups", "the job is not in its cgroup"))
            return "; ".join(f"{layer}: {problem}" for layer, problem in found) or None

        try:
            supervise.handshake(attest_r, go_w, deadline, check)
            timed_out, exceeded = supervise.watch(process, job.out_dir, job.limits, deadline)
        finally:
            reap.sweep(process.pid, job.uid)
            with self._lock:
                self._active.pop(process.pid, None)
        return JobOutcome(
            process.returncode,
            timed_out,
            exceeded,
            time.monotonic() - started,
            supervise.tail(job.log),
            out_of_memory=job.cgroup is not None and job.cgroup.oom_killed(),
            breaches=tuple(found),
        )

    def _command(self, job: _Job, attest_fd: int, go_fd: int) -> list[str]:
        machine, setup = self._machine, job.setup
        in_dir, out_dir = str(job.in_dir), str(job.out_dir)
        drop = [] if job.uid is None else argv.setpriv(_need(machine.setpriv), job.uid)
        python = sys.executable
        if setup.mode == "bwrap":
            prefix = argv.bwrap(
                _need(machine.bwrap),
                root=machine.root,
                tmp_bytes=job.limits.tmp_bytes,
                env=protocol.child_env(job.limits.threads),
                visible=argv.outermost([*argv.python_paths(), *_library(setup)]),
                binds=[(in_dir, protocol.VIEW_IN, False), (out_dir, protocol.VIEW_OUT, True)],
            )
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
        child = protocol.child_argv(python, job.phase, in_dir, out_dir, attest_fd, go_fd)
        return [*prefix, *drop, *child]

    @contextmanager
    def _job_cgroup(self, setup: Setup, limits: Limits) -> Iterator[JobCgroup | None]:
        if setup.cgroups is None:
            yield None
            return
        name = f"job-{os.getpid()}-{next(self._job_numbers)}"
        cgroup = setup.cgroups.create(
            name, limits.memory_bytes, limits.max_processes, limits.threads
        )
        try:
            yield cgroup
        finally:
            cgroup.kill_all_and_remove()

    @contextmanager
    def _job_uid(self, setup: Setup) -> Iterator[int | None]:
        if not setup.identity:
            yield None
            return
        try:
            with leases.job_uid() as uid:
                yield uid
        except leases.LeaseError as exc:
            raise SandboxError(str(exc)) from None


def _rlimits(limits: Limits, own_uid: bool) -> dict[str, int]:
    rlimits = {
        "RLIMIT_DATA": limits.memory_bytes,
        "RLIMIT_CPU": int(limits.timeout_seconds * 2) + 10,
        "RLIMIT_FSIZE": limits.max_file_bytes,
        "RLIMIT_NOFILE": limits.max_open_files,
        "RLIMIT_CORE": 0,
    }
    if own_uid:
        # RLIMIT_NPROC counts every process of the uid, so it is only meaningful per job uid.
        rlimits["RLIMIT_NPROC"] = limits.max_processes
    return rlimits


def _library(setup: Setup) -> list[str]:
    return [setup.seccomp_library] if setup.seccomp_library else []


def _need(program: str | None) -> str:
    assert program is not None, "the setup names a tool this machine lacks"
    return program
