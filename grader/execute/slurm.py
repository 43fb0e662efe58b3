"""Grading on a Slurm cluster through submitit: a job array per assignment, a task per submission.

This process is the head: it stages what the tasks need in the shared folder, submits them, and
collects each Result as its task finishes. A task grades one submission: each of its seeds
still to grade in turn, in one warm sandbox, so the task's start (torch imported once) is paid
once a submission. Only the head writes the results store, the kept weights and the
leaderboard. Each task runs `slurm_task.run_task` on its node: the same sandbox and job protocol
as a local run, under the assignment's budgets as Slurm limits.

The shared folder (--shared-dir) must be visible to every node at the same path. Each part is
0700, so a job uid on a node could not look in even where it sees the filesystem:

    data/                         the data cache: the head prepares it, tasks read it
    holdout/holdout-<sum>.npz     a spec's private hold-out set, where it names one
    tasks/<assignment>/<task>/    a staged submission, and the weights its task kept
    jobs/<job id>/                submitit's: the task's pickle (paths only), logs, its result

Resume: the store remembers each seed handed to a task (job id, folder, reuse key) until its
result is recorded. A new head adopts the open tasks of seeds it still has to grade, collecting
what finished and waiting for what runs, and submits only the rest.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import submitit
from submitit.core import utils as submitit_utils

from grader.core.files import atomic_copy, weights_path
from grader.core.results import CacheKey, Mode, Result, Status
from grader.execute import slurm_queue
from grader.execute.local import GradeRequest, drop
from grader.execute.slurm_queue import SlurmError, TaskState
from grader.execute.slurm_task import NodeOutcome, NodeTask, run_task
from grader.jobs.context import portable
from grader.jobs.grade import failed, grade, now
from grader.jobs.seeds import STOPS_THE_SEEDS
from grader.sandbox.box import Sandbox, SandboxError, SandboxOptions
from grader.sandbox.tree import remove_tree
from grader.store.sqlite import Store, SubmittedTask

Log = Callable[[str], None]
KeyOf = Callable[[GradeRequest], CacheKey]
Waited = tuple[GradeRequest, Future[Result]]
Identity = tuple[str, str, CacheKey, int]  # student, assignment, reuse key, seed: a request


NODE_OVERHEAD_MB = 1536  # the task's grader process and its warm process, torch imported
MARGIN_MINUTES = 5  # starting the task and its sandbox, beyond the phases' own budgets
# submitit asks Slurm for a warning signal before the time limit (USR2: checkpoint, requeue),
# which Slurm may send up to a minute early, even while a task's Python starts and USR2 would
# kill it. A grading cannot resume: the warning is SIGURG, which every process ignores.
WARNING_SIGNAL = "URG"
GRACE_SECONDS = 10.0  # a result written as a task ends may take a moment to show on NFS
LOG_LINES = 20
PARTS = ("data", "holdout", "tasks", "jobs")


@dataclass(frozen=True)
class SlurmOptions:
    shared_dir: Path
    partition: str | None = None
    account: str | None = None
    gpus_per_task: int = 0
    array_parallelism: int | None = None  # tasks running at once; None: as Slurm allows
    extra: tuple[tuple[str, str], ...] = ()  # more sbatch options, applied last
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)
    poll_seconds: float = 2.0


def prepare_shared_dir(shared_dir: Path) -> Path:
    """Create the shared folder's parts, private to this user; return the data cache's folder."""
    try:
        for part in PARTS:
            folder = shared_dir / part
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
    except OSError as exc:
        raise SlurmError(f"--shared-dir {shared_dir}: {exc.strerror or exc}") from None
    return shared_dir / "data"


def sbatch_parameters(
    request: GradeRequest, options: SlurmOptions, seeds: int = 1
) -> dict[str, Any]:
    """submitit's parameters for an assignment's tasks, each grading at most `seeds` seeds:
    its budgets as Slurm's limits."""
    settings, spec = request.context.settings, request.context.spec
    budgets = spec.budgets
    phase = settings.timeout_seconds or budgets.timeout_seconds
    # Training and evaluation, a second training to compare, the submitted weights evaluated.
    retrains = settings.verify_determinism or spec.grading.verify_determinism
    phases = (2 + retrains + (settings.mode is Mode.VERIFY)) * seeds
    parameters: dict[str, Any] = {
        "job_name": f"grader-{spec.name}",
        "time": math.ceil(phases * phase / 60) + MARGIN_MINUTES,
        "mem": f"{budgets.memory_mb + NODE_OVERHEAD_MB}M",
        "cpus_per_task": spec.grading.threads,
        "additional_parameters": {"signal": WARNING_SIGNAL} | dict(options.extra),
    }
    optional = {
        "partition": options.partition,
        "account": options.account,
        "gpus_per_task": options.gpus_per_task or None,
        "array_parallelism": options.array_parallelism,
    }
    return parameters | {name: value for name, value in optional.items() if value is not None}


@dataclass(eq=False)
class _Waiting:
    """A request (one seed of a task) whose Result the head still waits for."""

    request: GradeRequest
    future: Future[Result]
    job: submitit.Job[NodeOutcome]
    task_id: int  # its row in the store
    ended_since: float | None = None  # when Slurm first said it ended without a result


class SlurmExecutor:
    def __init__(
        self,
        options: SlurmOptions,
        sandbox: Sandbox,
        store: Store,
        run_id: int,
        key_of: KeyOf,
        log: Log,
        only: tuple[str, ...] = (),
    ) -> None:
        """only: the students this run grades (--only); others' tasks are left to a later run.
        Empty: every student's."""
        slurm_queue.require_commands()
        prepare_shared_dir(options.shared_dir)
        self._options, self._sandbox, self._store = options, sandbox, store
        self._run_id, self._key_of, self._log = run_id, key_of, log
        self._only = only
        self._shared = options.shared_dir
        self._folder = self._shared / "jobs" / "%j"
        self._waiting: list[_Waiting] = []  # a request each: a task's seeds are waited for apart
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._collector = threading.Thread(target=self._collect, name="slurm", daemon=True)
        self._noted: set[str] = set()  # nodes and problems already said on the terminal

    def submit_all(self, requests: list[GradeRequest]) -> list[Future[Result]]:
        futures: list[Future[Result]] = [Future() for _ in requests]
        adoptable, stale = self._open_tasks()
        fresh, adopted = [], []
        refused: set[tuple[str, str]] = set()
        for request, future in zip(requests, futures, strict=True):
            task = adoptable.pop(self._identity(request), None)
            sub, ctx = request.submission, request.context
            if sub.problem and (sub.student, sub.assignment) in refused:
                drop(future)  # its first seed already failed so, as in a local run
            elif sub.problem:
                # Grading stops at the problem before any job would start: no task needed.
                refused.add((sub.student, sub.assignment))
                future.set_result(grade(sub, ctx, self._sandbox))
            elif task is not None:
                job: submitit.Job[NodeOutcome] = submitit.SlurmJob(task.folder, task.job_id)
                adopted.append(_Waiting(request, future, job, task.id))
            else:
                fresh.append((request, future))
        kept_jobs = {w.job.job_id for w in adopted}  # a job still grading seeds asked for
        self._abandon([t for t in [*stale, *adoptable.values()] if t.job_id not in kept_jobs])
        if adopted:
            self._log(f"slurm: collecting {len(adopted)} task(s) an earlier run left in Slurm")
        self._watch(adopted)
        for group in _by_assignment(fresh):
            self._submit_array(group)
        if not self._collector.is_alive():
            self._collector.start()
        return futures

    def stop(self) -> None:
        """Cancel every task still waited for; the next run submits them again."""
        self._stopping.set()
        with self._lock:
            waiting, self._waiting = self._waiting, []
        slurm_queue.cancel({w.job.job_id for w in waiting})
        self._store.abandon_tasks([w.task_id for w in waiting], now())
        for w in waiting:
            w.future.cancel()

    def close(self) -> None:
        self._stopping.set()
        if self._collector.is_alive():
            self._collector.join()

    # -- submitting ---------------------------------------------------------------------------

    def _identity(self, request: GradeRequest) -> Identity:
        sub = request.submission
        return (sub.student, sub.assignment, self._key_of(request), request.context.seed)

    def _open_tasks(self) -> tuple[dict[Identity, SubmittedTask], list[SubmittedTask]]:
        """Open tasks by what they grade (the newest of each), and older duplicates."""
        adoptable: dict[Identity, SubmittedTask] = {}
        stale = []
        for task in self._store.open_tasks():  # oldest first
            if self._only and task.student not in self._only:
                continue  # a regrade of some students neither cancels nor takes others' tasks
            identity = (task.student, task.assignment, task.key, task.seed)
            if identity in adoptable:
                stale.append(adoptable[identity])
            adoptable[identity] = task
        return adoptable, stale

    def _abandon(self, tasks: list[SubmittedTask]) -> None:
        """Tasks of submissions that changed or left: their results would be of no use."""
        if tasks:
            slurm_queue.cancel({task.job_id for task in tasks})
            self._store.abandon_tasks([task.id for task in tasks], now())

    def _submit_array(self, group: list[Waited]) -> None:
        bundles = _by_submission(group)
        first = group[0][0]
        executor = submitit.SlurmExecutor(folder=self._folder)
        most = max(len(bundle) for bundle in bundles)
        executor.update_parameters(**sbatch_parameters(first, self._options, seeds=most))
        tasks = [self._stage(bundle) for bundle in bundles]
        try:
            jobs = executor.map_array(run_task, tasks)
        except (submitit_utils.FailedJobError, submitit_utils.FailedSubmissionError) as exc:
            reason = _last_line(str(exc)) or "sbatch failed"
            self._log(f"slurm: sbatch refused {len(bundles)} task(s): {reason}")
            for request, future in group:
                sub, ctx = request.submission, request.context
                future.set_result(
                    failed(sub, ctx, Status.CRASHED, f"Slurm refused the task: {reason}")
                )
            return
        waiting = [
            (request, future, job)
            for bundle, job in zip(bundles, jobs, strict=True)
            for request, future in bundle
        ]
        rows = [
            SubmittedTask(*self._identity(request), job.job_id, str(self._folder))
            for request, _, job in waiting
        ]
        ids = self._store.add_tasks(rows, self._run_id, now())
        array = jobs[0].job_id.split("_")[0]
        self._log(f"slurm: job {array}: {len(jobs)} task(s) for {first.context.spec.name}")
        self._watch([_Waiting(r, f, job, i) for (r, f, job), i in zip(waiting, ids, strict=True)])

    def _stage(self, bundle: list[Waited]) -> NodeTask:
        """Copy what the task reads into the shared folder; the task's arguments name only it."""
        request = bundle[0][0]
        sub, ctx = request.submission, request.context
        folder = self._task_folder(request)
        remove_tree(folder)  # what an earlier, abandoned task left
        weights = None if sub.weights is None else _copy(sub.weights, folder)
        staged = replace(sub, source=_copy(sub.source, folder), weights=weights)
        kept = replace(ctx, settings=replace(ctx.settings, weights_dir=folder / "kept"))
        return NodeTask(
            submission=staged,
            context=portable(kept, sub.student, self._shared / "holdout"),
            to_grade=tuple(r.context.seed for r, _ in bundle),
            sandbox=self._options.sandbox,
        )

    def _task_folder(self, request: GradeRequest) -> Path:
        """One folder per submission and key, so a later head finds what an earlier task kept."""
        sub = request.submission
        key = json.dumps(asdict(self._key_of(request)), sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self._shared / "tasks" / sub.assignment / f"{sub.student}-{digest}"

    def _watch(self, waiting: list[_Waiting]) -> None:
        with self._lock:
            self._waiting.extend(waiting)

    # -- collecting ---------------------------------------------------------------------------

    def _collect(self) -> None:
        while not self._stopping.wait(self._options.poll_seconds):
            try:
                self._poll()
            except Exception as exc:  # a broken poll must not end collection: say it, go on
                self._note("poll", f"slurm: collecting failed ({exc}); trying again")

    def _poll(self) -> None:
        with self._lock:
            waiting = list(self._waiting)
        unanswered = [w for w in waiting if not self._answer(w)]
        if not unanswered:
            return
        known = slurm_queue.states([w.job.job_id for w in unanswered])
        if known is None:
            self._note("squeue", "slurm: squeue does not answer; still waiting for the tasks")
            return
        clock = time.monotonic()
        for w in unanswered:
            state = known.get(w.job.job_id)
            if state is not None and state.active:
                w.ended_since = None
            elif w.ended_since is None:
                w.ended_since = clock
            elif clock - w.ended_since >= GRACE_SECONDS and not self._answer(w):
                self._settle(w, self._ended_without_result(w, state))

    def _answer(self, w: _Waiting) -> bool:
        """Settle w from its result file, if the task wrote one."""
        if not w.job.paths.result_pickle.exists():
            return False
        try:
            self._settle(w, self._read(w))
        except SandboxError as exc:
            self._settle(w, exc)
        return True

    def _read(self, w: _Waiting) -> Result | None:
        """w's Result from its task's file; None: the task left its seed out."""
        sub, ctx = w.request.submission, w.request.context
        # submitit writes ("success", what run_task returned) or ("error", the traceback).
        kind, value = submitit_utils.pickle_load(w.job.paths.result_pickle)
        if kind != "success" or not isinstance(value, NodeOutcome):
            trace = str(value)
            message = f"the Slurm task failed: {_last_line(trace)}"
            return failed(sub, ctx, Status.CRASHED, message, log_tail=_tail(trace))
        if value.refusal:
            raise SandboxError(f"node {value.node}: {value.refusal}")
        self._note_layers(value)
        seed = ctx.seed
        result = next((r for r in value.results if r.seed == seed), None)
        if result is None and any(r.status in STOPS_THE_SEEDS for r in value.results):
            return None  # an earlier seed of the task failed so, as in a local run
        if result is None:  # a task of another grader version, say: grade it again next run
            return failed(sub, ctx, Status.CRASHED, f"the Slurm task returned no seed {seed}")
        if ctx.first_seed:  # the seed whose weights a row names, as in a local run
            kept = self._task_folder(w.request) / "kept"
            _keep_weights(result, kept, ctx.settings.weights_dir)
        return result

    def _ended_without_result(self, w: _Waiting, state: TaskState | None) -> Result:
        status, message = slurm_queue.failure(state)
        log = w.job.paths.stderr
        tail = _tail(log.read_text(errors="replace")) if log.exists() else ""
        return failed(w.request.submission, w.request.context, status, message, log_tail=tail)

    def _settle(self, w: _Waiting, outcome: Result | SandboxError | None) -> None:
        """w's future: its Result, the sandbox's refusal, or None: not graded (cancelled)."""
        with self._lock:
            if w not in self._waiting:
                return  # stopped meanwhile
            self._waiting.remove(w)
        if outcome is None:  # its task's row is closed here: no result will answer it
            self._store.abandon_tasks([w.task_id], now())
            drop(w.future)
        elif isinstance(outcome, SandboxError):
            w.future.set_exception(outcome)
        else:
            w.future.set_result(outcome)

    def _note_layers(self, outcome: NodeOutcome) -> None:
        off = [layer.name for layer in outcome.layers if not layer.on]
        if off:
            self._note(
                outcome.node,
                f"warning: slurm node {outcome.node} runs jobs with isolation layers off: "
                + ", ".join(off),
            )

    def _note(self, topic: str, message: str) -> None:
        if topic not in self._noted:
            self._noted.add(topic)
            self._log(message)


def _by_assignment(items: list[Waited]) -> Iterable[list[Waited]]:
    """One job array per assignment: its tasks share the spec's limits."""
    groups: dict[str, list[Waited]] = {}
    for item in items:
        groups.setdefault(item[0].submission.assignment, []).append(item)
    return groups.values()


def _by_submission(items: list[Waited]) -> list[list[Waited]]:
    """One task per submission: the seeds it still needs, graded in turn."""
    groups: dict[str, list[Waited]] = {}
    for item in items:
        groups.setdefault(item[0].submission.student, []).append(item)
    return list(groups.values())


def _copy(path: Path, folder: Path) -> Path:
    dest = folder / path.name
    atomic_copy(path, dest)
    return dest


def _keep_weights(result: Result, kept: Path, weights_dir: Path | None) -> None:
    """Move the weights the task kept to where a local run keeps them."""
    source = weights_path(kept, result.assignment, result.student)
    if weights_dir is not None and result.ok and source.is_file():
        atomic_copy(source, weights_path(weights_dir, result.assignment, result.student))
    remove_tree(kept)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-LOG_LINES:])
