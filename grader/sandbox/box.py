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

import contextlib
import ctypes
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from grader import protocol
from grader.core.errors import UserError
from grader.core.files import MB
from grader.core.machine import gpus
from grader.protocol import Attestation, Confinement, JobConfig, LandlockRules, Phase, Task
from grader.sandbox import launch, leases, reap, supervise
from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.launch import Job
from grader.sandbox.probe import (
    LAYERS,
    START,
    LayerName,
    Machine,
    Namespacing,
    Setup,
    own_namespaces,
)
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


PR_SET_DUMPABLE = 4
WARM = "warm"  # the notes' key for why jobs are not forked from a warm process
# A setup can do without these.
OPTIONAL_LAYERS = (LayerName.IDENTITY, LayerName.CGROUPS, LayerName.SECCOMP, LayerName.LANDLOCK)


Starter = Callable[[Job, int, int, int], Running]


class SandboxError(UserError):
    """The sandbox cannot give the isolation that was asked for."""


@dataclass(frozen=True)
class SandboxOptions:
    """How jobs are isolated, as the person grading asked: passed whole from the command line
    to wherever a sandbox is made (a Slurm node makes its own from the head's)."""

    enabled: bool = True  # False: --no-sandbox, for trusted code (benchmarks)
    require: bool = False  # every layer must be on, or nothing runs
    warm: bool = True  # fork each job phase from a warm process

    def __post_init__(self) -> None:
        if self.require and not self.enabled:
            raise SandboxError("--require-sandbox and --no-sandbox contradict each other")

    def sandbox(self) -> Sandbox:
        return Sandbox(enabled=self.enabled, require=self.require, warm=self.warm)


class Sandbox:
    """Runs grader.child jobs with every isolation layer this machine can prove: forked from a
    warm process where it can (warm=True), else as a fresh process per job phase."""

    def __init__(self, *, enabled: bool = True, require: bool = False, warm: bool = True) -> None:
        # Where jobs share the grader's uid, none may open its /proc/<pid>/mem (and the labels).
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        self._machine = Machine.detect(enabled)
        self._namespaces = own_namespaces()
        self._active: dict[int, int | None] = {}  # process group -> job uid, for kill_all
        self._lock = threading.Lock()
        self._stopped = False  # after kill_all: a phase that starts late is ended at once
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
            return JobOutcome(-1, False, False, 0.0, str(exc), breaches=((START, str(exc)),))

    def prestart(self, threads: int, jobs: int) -> None:
        """Where jobs are forked from warm processes, start those for `jobs` jobs at once of
        `threads` threads now, so they are ready by the time the first jobs need them."""
        if self._setup.warm:
            self._pool.prestart(threads, jobs)

    def landlock_rules(self) -> tuple[str, ...]:
        """The Landlock rules a job gets here, in words, as a probe job's (a job's own folders
        have other names); empty where Landlock is off."""
        if not self._setup.landlock_abi:
            return ()
        with workspace() as folder:
            in_dir, out_dir = job_folders(folder)
            draft = Job(self._setup, Phase.PROBE, in_dir, out_dir, folder / "log", PROBE_LIMITS,
                        None, None, _promise(self._setup, None, PROBE_LIMITS, {}), {})  # fmt: skip
            job, _ = _with_landlock(draft)
        return job.promise.landlock or ()

    def kill_all(self) -> None:
        """Stop every running job at once, and any a worker thread starts after (the grader was
        interrupted: a thread may be between phases, or forking, right now)."""
        with self._lock:
            self._stopped = True
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
                notes = {WARM: str(exc)}
            if forked and forked.layers_on() == set(LAYERS):
                return forked, notes
        cold, cold_notes = self._first_proven(self._machine.cold_setups())
        if forked and forked.layers_on() >= cold.layers_on():
            return forked, notes
        if forked:
            lacking = ", ".join(sorted(cold.layers_on() - forked.layers_on()))
            cold_notes[WARM] = f"the warm path would lack {lacking}"
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
            where = WARM if setup.warm else LayerName.NAMESPACES
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
                return [(START, str(exc))]
        why = (outcome.log_tail.strip().splitlines() or [""])[-1]
        return [
            (layer, f"{problem} ({why})" if layer == START and why else problem)
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
            draft = Job(setup, task.phase, in_dir, out_dir, log, limits, uid, cgroup,
                        _promise(setup, uid, limits, self._namespaces),
                        protocol.child_env(limits.threads) | gpu)  # fmt: skip
            job, rules = _with_landlock(draft)
            _hand_over(job, task, rules)
            if not setup.warm and job.own_view:
                return self._supervise(job, partial(launch.start_cold, self._machine))
            # A job without a pid namespace of its own is forked by a warm process, which ends
            # whatever the job leaves running; cold, by a fresh one without torch preloaded.
            with contextlib.ExitStack() as stack:
                if pool is None:
                    pool = self._pool if setup.warm else stack.enter_context(ZygotePool(False))
                with pool.lend(limits.threads) as zygote:
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
            stopped = self._stopped
        if stopped:
            reap.sweep(process.pid, job.uid)
        found: list[tuple[str, str]] = []

        def check(attestation: Attestation | None) -> str | None:
            found.extend(breaches(attestation, job.promise))
            if not found and job.cgroup is not None and not job.cgroup.pids():
                found.append((LayerName.CGROUPS, "the job is not in its cgroup"))
            return "; ".join(f"{layer}: {problem}" for layer, problem in found) or None

        try:
            supervise.handshake(attest_r, go_w, deadline, check)
            tmp = None if job.own_view else job.tmp_dir
            timed_out, overflow = supervise.watch(process, job.out_dir, job.limits, deadline, tmp)
        finally:
            reap.sweep(process.pid, job.uid)
            with self._lock:
                self._active.pop(process.pid, None)
        assert process.returncode is not None
        return JobOutcome(
            process.returncode,
            timed_out,
            overflow is not None,
            time.monotonic() - started,
            supervise.tail(job.log),
            out_of_memory=job.cgroup is not None and job.cgroup.oom_killed(),
            overflow=overflow or "",
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


def _promise(setup: Setup, uid: int | None, limits: Limits, namespaces: dict[str, str]) -> Promise:
    return Promise(
        rlimits=launch.rlimits(limits, uid is not None),
        seccomp=setup.seccomp_library is not None,
        uid=uid,
        separate_from=namespaces if setup.mode is not Namespacing.NONE else None,
    )


def _with_landlock(draft: Job) -> tuple[Job, LandlockRules | None]:
    """The job with Landlock's rules (drawn from its view) in its promise, and the rules. A job
    that sees the host's filesystem gets a temp folder of its own, never the host's /tmp, where
    the next job could find what it left."""
    rules = launch.landlock_rules(draft)
    expected = None if rules is None else rules.describe(draft.setup.landlock_abi)
    temp = {} if draft.own_view else {"TMPDIR": str(draft.tmp_dir), "HOME": str(draft.tmp_dir)}
    job = replace(draft, promise=replace(draft.promise, landlock=expected), env=draft.env | temp)
    return job, rules


def _hand_over(job: Job, task: Task, rules: LandlockRules | None) -> None:
    """The job's config beside its inputs, all readable, and its writable folders its own."""
    confinement = Confinement(job.promise.rlimits, job.setup.seccomp_library, rules)
    (job.in_dir / protocol.CONFIG).write_text(JobConfig(task, confinement).to_json())
    for path in job.in_dir.iterdir():
        path.chmod(0o644)
    for folder in (job.out_dir, *(() if job.own_view else (job.tmp_dir,))):
        folder.mkdir(exist_ok=True)
        if job.uid is not None:
            os.chown(folder, job.uid, job.uid)


def _launch_line(setup: Setup, warm: bool, notes: dict[str, str]) -> str:
    """How jobs start, for the terminal: warm, or cold and why."""
    if setup.warm:
        return "warm: a warm process per worker (torch imported once) forks each job phase"
    why = "--no-warm" if not warm else notes.get(WARM, "no warm process could start here")
    return f"cold: a fresh process per job phase ({why})"
