"""A batch run: skip what is already graded, grade the rest through an executor (here or on
Slurm), record each result the moment it is known, regenerate the board and the reports."""

from __future__ import annotations

import difflib
import json
import os
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from grader import __version__
from grader.api.common import Log, find_specs, grading_data, open_sandbox
from grader.api.reporting import ReportWriter
from grader.api.similarity import SimilaritySummary, compare_all
from grader.core.errors import UserError
from grader.core.machine import DeviceError, cpu, gpus
from grader.core.results import CacheKey, Environment, Mode, Result, Status
from grader.core.spec import Spec, SpecsAsked, load_specs
from grader.core.submission import StudentMeta, Submission, discover
from grader.core.text import one_line, printable
from grader.execute.local import Executor, GradeRequest, LocalExecutor
from grader.jobs.context import GradingContext, Settings, make_context
from grader.jobs.environment import check_device, environment, torch_version
from grader.jobs.grade import failed, now, resolve_mode
from grader.jobs.seeds import combine
from grader.protocol import MESSAGE_CHARS
from grader.publish.anonymize import refusal_lines
from grader.publish.board import CSV_NAME, PLOT_NAME, write_leaderboard
from grader.publish.ranking import similar_to
from grader.publish.reports import REPORTS
from grader.sandbox.box import Sandbox, SandboxError, SandboxOptions
from grader.sandbox.supervise import LOG_TAIL_BYTES
from grader.sandbox.workspace import remove_stale_workspaces
from grader.store.sqlite import DB_NAME, RunRequest, Store

if TYPE_CHECKING:  # importing it for real pulls in submitit, needed only for Slurm runs
    from grader.execute.slurm import SlurmOptions


PARTIAL = "partial"  # OUT/partial/: the board an interrupted run leaves (a finished run's goes)

# Told of each graded submission as it finishes: (result, how many done, how many to grade).
Progress = Callable[[Result, int, int], None]


@dataclass(frozen=True)
class RunOptions:
    submissions: Path
    out: Path
    # The specs folder, or how the person named one (--assignments or GRADER_ASSIGNMENTS), if
    # they did: found then as `grader run` finds it, and said on the terminal.
    assignments: Path | SpecsAsked
    data_dir: Path
    cache_dir: Path
    mode: Mode = Mode.RETRAIN
    timeout_seconds: float | None = None
    workers: int | None = None  # None: one per GPU on CUDA, else the CPU count (at most 4)
    force: bool = False
    verify_determinism: bool = False
    device: str = "auto"
    seeds: tuple[int, ...] = ()  # overrides each spec's seeds (--seeds); empty: the specs'
    slurm: SlurmOptions | None = None  # None: grade on this machine (LocalExecutor)
    # --only and --reason: regrade just these students (forced), saying why in the store.
    request: RunRequest = field(default_factory=RunRequest)
    similarity: bool = True  # compare every pair of students at the end (--no-similarity: not)


@dataclass(frozen=True)
class RunSummary:
    board: pd.DataFrame
    graded: int
    reused: int
    csv_path: Path
    reports: Path  # OUT/reports: <student>/<assignment>.html and .md for every row
    reports_written: int = 0
    similarity: SimilaritySummary | None = None  # None: --no-similarity


def run(
    options: RunOptions, sandbox: Sandbox, log: Log, progress: Progress | None = None
) -> RunSummary:
    env = _run_environment(options)
    specs = load_specs(_specs_folder(options, log))
    max_weights = max(s.budgets.weights_bytes for s in specs.values())
    submissions = discover(options.submissions, specs, max_weights)
    only = options.request.only
    if only:
        submissions = _chosen(submissions, only, options.submissions)
        log(f"regrading only {', '.join(only)}, every other row kept as it is")
    # Named students are graded again even if unchanged: that is what a regrade request asks.
    force = options.force or bool(only)
    store = Store(options.out / DB_NAME)
    remove_stale_workspaces()
    _record_students(store, submissions, log)
    contexts = _contexts(specs, {s.assignment for s in submissions}, options, env, log)
    pending = [s for s in submissions if force or not _reusable(store, s, contexts)]
    reused = len(submissions) - len(pending)
    log(f"{len(submissions)} submissions: {reused} unchanged and reused, {len(pending)} to grade")
    layers = [str(layer) for layer in sandbox.layers]
    run_id = store.begin_run(now(), layers, env, options.request)
    executor = _executor(options, sandbox, store, run_id, env, log)
    _warm_up(options, sandbox, env, [contexts[s.assignment] for s in pending])
    meta = {student: StudentMeta.from_dict(m) for student, m in store.students().items()}
    reports = ReportWriter(specs, options.out, meta, log)
    saved = 0

    def recorded(result: Result, done: int) -> None:
        nonlocal saved
        store.record(result, run_id)
        saved = done
        if progress:
            progress(result, done, len(pending))
        reports.submit(result)  # drawn while other submissions still grade

    # A regrade of some students leaves the reference rows, like every other row, alone.
    for result in _baselines(store, {} if only else contexts, force=options.force):
        store.record(result, run_id)
        log(f"baseline {result.assignment}/{result.student}: {_said(result)}")
    similar = None
    try:
        work = [(s, contexts[s.assignment]) for s in pending]
        grade_all(executor, work, recorded, store, force=force)
        if options.similarity:
            data = {name: ctx.data for name, ctx in contexts.items()}

            def grade_base(spec: Spec, base: Submission) -> Result | None:
                return _grade_base(executor, contexts[spec.name], base, log)

            similar = compare_all(
                specs, submissions, store, lambda s: data[s.name], options.out, log, grade_base
            )
    except BaseException as stop:
        reports.abandon()
        # What the store holds is kept (a run again resumes from it), but not as THE board:
        # OUT/leaderboard.csv stays the last finished run's, this one goes where it says partial.
        write_leaderboard(store.latest(), specs, options.out / PARTIAL, meta)
        if isinstance(stop, KeyboardInterrupt):
            raise Interrupted(saved, len(pending), options.out) from stop
        raise
    finally:
        executor.close()
    pairs = similar_to(store.similar_pairs())
    board = write_leaderboard(store.latest(), specs, options.out, meta, pairs)
    _remove_partial(options.out)
    # rows reused from earlier runs whose reports are missing (a regrade: its students' only)
    reports.missing([r for r in store.latest() if not only or r.student in only])
    for line in refusal_lines(store.latest(), meta):  # known once every row is
        log(line)
    written = reports.finish()
    store.finish_run(run_id, now(), len(pending), reused)
    return RunSummary(
        board, len(pending), reused, options.out / CSV_NAME, options.out / REPORTS, written, similar
    )


def _grade_base(
    executor: Executor, ctx: GradingContext, base: Submission, log: Log
) -> Result | None:
    """A base file (the starter) graded as a submission is, retrained on every seed: the model
    copy detection holds two students' alike mistakes against. Never a row of the board."""
    log(f"similarity {ctx.spec.name}: grading {base.source.name} to compare mistakes with it")
    graded: list[Result] = []
    retrain = replace(ctx, settings=replace(ctx.settings, mode=Mode.RETRAIN))
    grade_all(executor, [(base, retrain)], lambda result, done: graded.append(result))
    if not graded or graded[0].status not in (Status.OK, Status.FLAGGED):
        said = _said(graded[0]) if graded else "not graded"
        log(f"similarity {ctx.spec.name}: {base.source.name}: {said}")
        return None
    return graded[0]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during the grading: what was saved, and where the partial board went."""

    def __init__(self, saved: int, pending: int, out: Path) -> None:
        super().__init__(f"{saved} of {pending} submissions graded")
        self.saved = saved  # submissions graded and saved in the store before the stop
        self.pending = pending  # submissions this run set out to grade
        self.store = out / DB_NAME
        self.partial = out / PARTIAL / CSV_NAME
        self.board = out / CSV_NAME if (out / CSV_NAME).exists() else None


def _chosen(submissions: list[Submission], only: tuple[str, ...], root: Path) -> list[Submission]:
    """The submissions of the students --only names; a name with none is a one-line error
    naming the students whose names are close to it."""
    known = sorted({sub.student for sub in submissions})
    unknown = [name for name in only if name not in known]
    if unknown:
        raise UserError("; ".join(_unknown(name, known, root) for name in unknown))
    return [sub for sub in submissions if sub.student in only]


def _unknown(name: str, known: list[str], root: Path) -> str:
    said = f"--only: no student {printable(name)!r} in {root}"
    near = difflib.get_close_matches(name, known, n=3)
    return f"{said} (did you mean {', '.join(printable(n) for n in near)}?)" if near else said


def _remove_partial(out: Path) -> None:
    """A finished run's board supersedes an interrupted one's: only the files it wrote go."""
    folder = out / PARTIAL
    for name in (CSV_NAME, PLOT_NAME):
        (folder / name).unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _record_students(store: Store, submissions: list[Submission], log: Log) -> None:
    """Keep what each student.toml says; say what in it was ignored (it never stops a run)."""
    metadata = {}
    for sub in submissions:
        if sub.student in metadata or (sub.problem and not sub.content_hash):
            continue  # one file per student; a rejected folder's is not read
        metadata[sub.student] = sub.meta.to_dict()
        for reason in sub.meta.ignored:
            log(f"{sub.student}/student.toml: ignored: {reason}")
    store.record_students(metadata, now())


def grade_all(
    executor: Executor,
    pending: list[tuple[Submission, GradingContext]],
    recorded: Callable[[Result, int], None],
    store: Store | None = None,
    *,
    force: bool = False,
) -> None:
    """The one seed loop: grade every seed of every submission, reusing seeds the store holds
    graded under the same conditions (an interrupted run resumes), and hand on each
    submission's combined Result the moment its last seed is known; an interruption stops
    every job. Without a store (`grader check`) every seed is graded, but for those the
    executor did not grade after an earlier seed failed (STOPS_THE_SEEDS), which the row names."""
    results: list[dict[int, Result]] = [{} for _ in pending]
    stopped: list[set[int]] = [set() for _ in pending]
    requests: list[GradeRequest] = []
    places: list[tuple[int, int]] = []  # each request's submission (its index) and seed
    for index, (sub, ctx) in enumerate(pending):
        key = cache_key(sub, ctx)
        for seeded in ctx.each_seed():
            kept = None if store is None else store.cached_seed(*_seed_of(sub, seeded), key)
            if kept is not None and not force and _keeps(kept, sub, ctx):
                results[index][seeded.seed] = kept
            else:
                requests.append(GradeRequest(sub, seeded))
                places.append((index, seeded.seed))
    done = 0

    def arrived(index: int) -> None:
        nonlocal done
        ctx = pending[index][1]
        graded = [seed for seed in ctx.all_seeds if seed in results[index]]
        if len(graded) + len(stopped[index]) == len(ctx.all_seeds):
            done += 1
            rows = [results[index][seed] for seed in graded]
            recorded(combine(rows, ctx.spec, tuple(sorted(stopped[index]))), done)

    waiting = {index for index, _ in places}
    for index in range(len(pending)):
        if index not in waiting:
            arrived(index)  # every seed reused
    try:
        futures = dict(zip(executor.submit_all(requests), places, strict=True))
        for future in as_completed(futures):
            index, seed = futures[future]
            if future.cancelled():  # not graded: an earlier seed failed
                stopped[index].add(seed)
                arrived(index)
                continue
            sub, ctx = pending[index]
            result = _graded(future, sub, ctx.for_seed(seed))
            if store is not None:
                store.record_seed(result, cache_key(sub, ctx))
            results[index][seed] = result
            arrived(index)
    except BaseException:
        executor.stop()
        raise


def _seed_of(sub: Submission, ctx: GradingContext) -> tuple[str, str, int]:
    return sub.student, sub.assignment, ctx.seed


def _graded(future: Future[Result], sub: Submission, ctx: GradingContext) -> Result:
    """The Result of grading sub in ctx. The grader's own error while grading it becomes its
    row and the batch goes on (a Slurm task's error already does); a sandbox that refuses to
    run jobs (--require-sandbox) stops the batch."""
    try:
        return future.result()
    except SandboxError:
        raise
    except Exception as exc:
        said = f"the grader failed while grading this submission: {type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc))
        return failed(
            sub,
            ctx,
            Status.CRASHED,
            one_line(said, MESSAGE_CHARS),
            log_tail=printable(trace[-LOG_TAIL_BYTES:], keep_lines=True),
        )


def _executor(
    options: RunOptions, sandbox: Sandbox, store: Store, run_id: int, env: Environment, log: Log
) -> Executor:
    if options.slurm is None:
        return LocalExecutor(sandbox, options.workers or default_workers(env))
    from grader.execute.slurm import SlurmExecutor

    def key_of(request: GradeRequest) -> CacheKey:
        return cache_key(request.submission, request.context)

    return SlurmExecutor(
        options.slurm, sandbox, store, run_id, key_of, log, only=options.request.only
    )


def _warm_up(
    options: RunOptions, sandbox: Sandbox, env: Environment, pending: list[GradingContext]
) -> None:
    """Start now the warm processes this machine's workers will fork the pending jobs from,
    while the baselines and the first jobs are still being prepared."""
    if options.slurm is None:
        workers = min(options.workers or default_workers(env), len(pending))
        for threads in {ctx.spec.grading.threads for ctx in pending}:
            sandbox.prestart(threads, workers)


def _run_environment(options: RunOptions) -> Environment:
    """Where this run's jobs train. On Slurm the nodes run them, not this machine: CUDA exactly
    when each task is given GPUs (each task checks its node has them, and the same torch)."""
    if options.slurm is None:
        return environment(options.device)
    from grader.execute.slurm_queue import require_commands

    require_commands()  # before any data is prepared for nodes that cannot be reached
    check_device(options.device)
    gpus = options.slurm.gpus_per_task > 0
    if options.device == "cuda" and not gpus:
        raise DeviceError("--device cuda with --executor slurm needs --gpus-per-task")
    cuda = gpus and options.device != "cpu"
    return Environment(torch_version(), "cuda" if cuda else "cpu", cpu())


def _baselines(
    store: Store, contexts: dict[str, GradingContext], *, force: bool
) -> Iterator[Result]:
    """Each spec's baselines not yet graded on these seeds, spec and data, graded here."""
    from grader.jobs.baselines import PREFIX, content_hash, grade_baseline

    for name, ctx in sorted(contexts.items()):
        for baseline in ctx.spec.grading.baselines:
            key = _key(ctx, content_hash(baseline), Mode.RETRAIN, device="cpu")
            if not force and store.cached(PREFIX + baseline, name, key) is not None:
                continue
            results = [grade_baseline(baseline, seeded) for seeded in ctx.each_seed()]
            yield combine(results, ctx.spec)


def _said(result: Result) -> str:
    if result.test_accuracy is None:
        return f"{result.status}: {result.message}"
    return f"{result.status}, test {100 * result.test_accuracy:.2f}%"


def default_workers(env: Environment) -> int:
    """One job per GPU; on the CPU, one per core (each job gets its own thread), up to 4."""
    if env.device == "cuda":
        return max(1, len(gpus()))
    return min(4, os.cpu_count() or 1)


def cache_key(sub: Submission, ctx: GradingContext) -> CacheKey:
    mode = resolve_mode(ctx.settings.mode, sub)
    return _key(ctx, sub.content_hash, mode, ctx.environment.device)


def _key(ctx: GradingContext, content_hash: str, mode: Mode, device: str) -> CacheKey:
    """What a stored result must match to stand for a new one (baselines run on the CPU)."""
    return CacheKey(
        content_hash=content_hash,
        spec_digest=ctx.spec.digest,
        data_checksum=ctx.data.checksum,
        grader_version=__version__,
        mode=mode,
        torch_version=ctx.environment.torch_version,
        device=device,
        seeds=json.dumps(list(ctx.all_seeds)),
    )


def _reusable(store: Store, sub: Submission, contexts: dict[str, GradingContext]) -> bool:
    ctx = contexts[sub.assignment]
    return _keeps(store.cached(sub.student, sub.assignment, cache_key(sub, ctx)), sub, ctx)


def _keeps(cached: Result | None, sub: Submission, ctx: GradingContext) -> bool:
    """Whether a stored result stands: not a busy machine's, nor flagged and reviewed since
    (graded again, to be ranked with its targets)."""
    if cached is None or cached.status.regraded:
        return False
    return not (cached.status is Status.FLAGGED and (sub.student, sub.content_hash) in ctx.reviewed)


def _contexts(
    specs: dict[str, Spec], needed: set[str], options: RunOptions, env: Environment, log: Log
) -> dict[str, GradingContext]:
    settings = Settings(
        mode=options.mode,
        timeout_seconds=options.timeout_seconds,
        weights_dir=options.out / "weights",
        verify_determinism=options.verify_determinism,
        seeds=options.seeds,
    )
    contexts = {}
    cache_dir = _cache_dir(options) if needed else options.cache_dir
    for name in sorted(needed):
        spec = specs[name]
        graded = grading_data(spec, options.data_dir, cache_dir)
        for note in graded.notes:
            log(f"{name}: {note}")
        log(f"{name}: {graded.holdout_said}")
        contexts[name] = make_context(spec, graded, env, settings)
    return contexts


def _cache_dir(options: RunOptions) -> Path:
    """Slurm tasks read the data from the shared folder, so the head prepares it there."""
    if options.slurm is None:
        return options.cache_dir
    from grader.execute.slurm import prepare_shared_dir

    return prepare_shared_dir(options.slurm.shared_dir)


def run_batch(
    options: RunOptions, sandbox: SandboxOptions, log: Log, progress: Progress | None = None
) -> RunSummary:
    """`grader run`: the specs found and the sandbox opened, each said, then run()."""
    options = replace(options, assignments=_specs_folder(options, log))
    with open_sandbox(sandbox, log) as box:
        return run(options, box, log, progress)


def _specs_folder(options: RunOptions, log: Log) -> Path:
    if isinstance(options.assignments, Path):
        return options.assignments
    return find_specs(options.assignments, options.submissions, log)
