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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from grader import protocol
from grader.core.files import MB
from grader.core.machine import gpus
from grader.protocol import Attestation, Confinement, JobConfig, Phase, Task
from grader.sandbox import launch, leases, reap, supervise
from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.launch import Job
from grader.sandbox.probe import LAYERS, Machine, Setup, own_namespaces
from grader.sandbox.supervise import JobOutcome, Limits, Running
from grader.sandbox.verify import Promise, breaches
from grader.sandbox.warm import WarmError, ZygotePool
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


Starter = Callable[[Job, int, int, int], Running]


class SandboxError(Exception):
    """The sandbox cannot give the isolation that was asked for."""


class Sandbox:
    """Runs grader.child jobs with every isolation layer this machine can prove: forked from a
    warm process where it can (warm=True), else as a fresh process per job phase."""

    def __init__(self, *, enabled: bool = True, require: bool = False, warm: bool = True) -> None:
        self._machine = Machine.detect(enabled)
        self._namespaces = own_namespaces()
        self._active: dict[int, int | None] = {}  # process group -> job uid, for kill_all
        self._lock = threading.Lock()
        self._job_numbers = itertools.count()
        self._pool = ZygotePool()
        self._gpus: queue.Queue[str] = queue.Queue()
        for index in gpus():
            self._gpus.put(index)
        self._setup, notes = self._prove(warm)
        self.layers = self._machine.describe(self._setup, notes)
        self.launch = _launch_line(self._setup, warm, notes)
        self.required = require
        weak = [layer.name for layer in self.layers if not layer.on]
        if require and weak:
            self.close()
            raise SandboxError("--require-sandbox: isolation layers off: " + ", ".join(weak))

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the warm processes (they also stop when this process ends)."""
        self._pool.close()

    @property
    def mode(self) -> str:
        """How namespaces are made: "bwrap", "unshare", "forked" (by a warm process's child for
        itself) or "none"."""
        return self._setup.mode

    @property
    def warm(self) -> bool:
        """Whether jobs are forked from warm processes."""
        return self._setup.warm

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
        try:
            return self._run(self._setup, task, in_dir, out_dir, log_path, limits)
        except WarmError as exc:
            return JobOutcome(-1, False, False, 0.0, str(exc), breaches=(("start", str(exc)),))

    def kill_all(self) -> None:
        """Stop every running job at once (the grader was interrupted)."""
        with self._lock:
            running = dict(self._active)
        for pid, uid in running.items():
            reap.sweep(pid, uid)

    # -- proving the layers ---------------------------------------------------------------

    def _prove(self, warm: bool) -> tuple[Setup, dict[str, str]]:
        """The setup whose probe job shows the most layers from inside: warm when it gives as
        many as the strongest fresh-process setup (as root it gives them all)."""
        forked: Setup | None = None
        notes: dict[str, str] = {}
        if warm:
            try:
                forked, notes = self._first_proven(self._machine.warm_setups())
            except SandboxError as exc:
                notes = {"warm": str(exc)}
            if forked and forked.layers_on() == set(LAYERS):
                return forked, notes
        cold, cold_notes = self._first_proven(self._machine.cold_setups())
        if forked and forked.layers_on() >= cold.layers_on():
            return forked, notes
        if forked:
            lacking = ", ".join(sorted(cold.layers_on() - forked.layers_on()))
            cold_notes["warm"] = f"the warm path would lack {lacking}"
        return cold, {**notes, **cold_notes}

    def _first_proven(self, setups: list[Setup]) -> tuple[Setup, dict[str, str]]:
        """The first setup whose probe job shows every promised layer from inside, leaving out
        the optional layers a probe lacked."""
        notes: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for setup in setups:
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
            where = "warm" if setup.warm else "namespaces"
            notes.setdefault(
                where,
                f"{setup.mode} could not run a job: "
                + "; ".join(problem for _, problem in problems),
            )
        raise SandboxError("cannot start a job at all: " + "; ".join(p for _, p in problems))

    def _probe(self, setup: Setup) -> list[tuple[str, str]]:
        with workspace() as folder, ZygotePool(preload=False) as pool:
            in_dir, out_dir = job_folders(folder)
            task = Task(Phase.PROBE)
            try:
                outcome = self._run(setup, task, in_dir, out_dir, folder / "log", PROBE_LIMITS,
                                    pool)  # fmt: skip
            except WarmError as exc:
                return [("start", str(exc))]
        why = (outcome.log_tail.strip().splitlines() or [""])[-1]
        return [
            (layer, f"{problem} ({why})" if layer == "start" and why else problem)
            for layer, problem in outcome.breaches
        ]

    # -- one job ----------------------------------------------------------------------------

    def _run(
        self,
        setup: Setup,
        task: Task,
        in_dir: Path,
        out_dir: Path,
        log: Path,
        limits: Limits,
        pool: ZygotePool | None = None,
    ) -> JobOutcome:
        with (
            self._job_uid(setup) as uid,
            self._job_cgroup(setup, limits) as cgroup,
            self._job_gpu(task.device) as gpu,
        ):
            promise = Promise(
                rlimits=launch.rlimits(limits, uid is not None),
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
            env = protocol.child_env(limits.threads) | gpu
            job = Job(setup, task.phase, in_dir, out_dir, log, limits, uid, cgroup, promise, env)
            if not setup.warm:
                return self._supervise(job, partial(launch.start_cold, self._machine))
            with (pool or self._pool).lend(limits.threads) as zygote:
                return self._supervise(job, partial(launch.start_warm, zygote))

    def _supervise(self, job: Job, start: Starter) -> JobOutcome:
        attest_r, attest_w = os.pipe()
        go_r, go_w = os.pipe()
        started = time.monotonic()
        deadline = started + job.limits.timeout_seconds
        try:
            with job.log.open("wb") as log:
                process = start(job, log.fileno(), attest_w, go_r)
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
        assert process.returncode is not None
        return JobOutcome(
            process.returncode,
            timed_out,
            exceeded,
            time.monotonic() - started,
            supervise.tail(job.log),
            out_of_memory=job.cgroup is not None and job.cgroup.oom_killed(),
            breaches=tuple(found),
        )

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
    def _job_gpu(self, device: str) -> Iterator[dict[str, str]]:
        """One GPU per job: a CUDA job waits for a free one and sees only it."""
        if device != "cuda":
            yield {}
            return
        index = self._gpus.get()
        try:
            yield {"CUDA_VISIBLE_DEVICES": index}
        finally:
            self._gpus.put(index)

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


def _launch_line(setup: Setup, warm: bool, notes: dict[str, str]) -> str:
    """How jobs start, for the terminal: warm, or cold and why."""
    if setup.warm:
        return "warm: a warm process per worker (torch imported once) forks each job phase"
    why = "--no-warm" if not warm else notes.get("warm", "no warm process could start here")
    return f"cold: a fresh process per job phase ({why})"
