"""A grading run over a folder of submissions: skip what is already graded, grade the rest in
parallel workers, record each result the moment it is known, regenerate the leaderboard."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from grader import __version__, datasets, leaderboard
from grader.grading import (
    GradingContext,
    Result,
    grade,
    now,
    remove_stale_workspaces,
    resolve_mode,
)
from grader.plots import plot_leaderboard
from grader.sandbox import Sandbox
from grader.spec import Spec, load_specs
from grader.store import CacheKey, Environment, Store
from grader.submission import Submission, discover

DB_NAME = "grades.sqlite"
CSV_NAME = "leaderboard.csv"
PLOT_NAME = "leaderboard.png"
# A busy machine or a broken environment can cause these, not the code: grade them again.
LOAD_DEPENDENT = ("timeout", "crashed")


@dataclass(frozen=True)
class RunOptions:
    submissions: Path
    out: Path
    assignments: Path
    data_dir: Path
    cache_dir: Path
    mode: str = "retrain"
    timeout_seconds: float | None = None
    workers: int = 1
    force: bool = False
    verify_determinism: bool = False


@dataclass(frozen=True)
class RunSummary:
    board: pd.DataFrame
    graded: int
    reused: int
    csv_path: Path


def environment() -> Environment:
    import torch

    return Environment(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")


def run(options: RunOptions, sandbox: Sandbox, log: Callable[[str], None]) -> RunSummary:
    specs = load_specs(options.assignments)
    max_weights = max(s.budgets.max_weights_mb for s in specs.values()) << 20
    submissions = mark_duplicates(discover(options.submissions, specs, max_weights))
    store = Store(options.out / DB_NAME, environment())
    remove_stale_workspaces()
    contexts = _contexts(specs, {s.assignment for s in submissions}, options, sandbox)
    pending, reused = [], 0
    for sub in submissions:
        if not options.force and _reuse(store, sub, contexts[sub.assignment]):
            reused += 1
        else:
            pending.append(sub)
    log(f"{len(submissions)} submissions: {reused} unchanged and reused, {len(pending)} to grade")
    started = now()
    try:
        _grade_all(pending, contexts, store, options.workers)
    finally:
        board = leaderboard.ranked(store.latest())
        leaderboard.write_csv(board, options.out / CSV_NAME)
        plot_leaderboard(board, specs, options.out / PLOT_NAME)
    store.record_run(started, now(), [str(layer) for layer in sandbox.layers], len(pending), reused)
    return RunSummary(board, len(pending), reused, options.out / CSV_NAME)


def mark_duplicates(submissions: list[Submission]) -> list[Submission]:
    """Folders whose names differ only in case would overwrite each other's rows."""
    seen: dict[tuple[str, str], list[str]] = {}
    for sub in submissions:
        seen.setdefault((sub.assignment, sub.student.casefold()), []).append(sub.student)
    marked = []
    for sub in submissions:
        names = seen[(sub.assignment, sub.student.casefold())]
        if len(names) > 1 and not sub.problem:
            sub = replace(
                sub,
                problem="duplicate student id: folders "
                + ", ".join(names)
                + " differ only in case",
            )
        marked.append(sub)
    return marked


def _contexts(
    specs: dict[str, Spec], needed: set[str], options: RunOptions, sandbox: Sandbox
) -> dict[str, GradingContext]:
    prepared: dict[str, datasets.PreparedData] = {}
    contexts = {}
    for name in sorted(needed):
        spec = specs[name]
        dataset = spec.assignment.dataset
        if dataset not in prepared:
            prepared[dataset] = datasets.prepare(dataset, options.data_dir, options.cache_dir)
        contexts[name] = GradingContext(
            spec=spec,
            data=prepared[dataset],
            sandbox=sandbox,
            mode=options.mode,
            timeout_seconds=options.timeout_seconds,
            weights_dir=options.out / "weights",
            verify_determinism=options.verify_determinism,
        )
    return contexts


def cache_key(sub: Submission, ctx: GradingContext, torch_version: str) -> CacheKey:
    return CacheKey(
        content_hash=sub.content_hash,
        spec_digest=ctx.spec.digest,
        data_checksum=ctx.data.checksum,
        grader_version=__version__,
        mode=resolve_mode(ctx.mode, sub),
        torch_version=torch_version,
    )


def _reuse(store: Store, sub: Submission, ctx: GradingContext) -> bool:
    key = cache_key(sub, ctx, store.environment.torch_version)
    cached = store.cached(sub.student, sub.assignment, key)
    return cached is not None and cached.status not in LOAD_DEPENDENT


def _grade_all(
    pending: list[Submission], contexts: dict[str, GradingContext], store: Store, workers: int
) -> None:
    if not pending:
        return

    def work(sub: Submission) -> Result:
        return grade(sub, contexts[sub.assignment])

    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(pending), desc="grading", unit="sub", file=sys.stderr) as bar,
    ):
        futures = {pool.submit(work, sub): sub for sub in pending}
        try:
            for future in as_completed(futures):
                result = future.result()
                store.record(result)
                bar.set_postfix_str(f"{result.student}/{result.assignment}: {result.status}")
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            contexts[pending[0].assignment].sandbox.kill_all()
            raise
