"""Grading one submission: a training job, an evaluation job, and the scores computed here.

Student code only ever runs in sandboxed children. This process holds the labels, reads the
children's files as untrusted, computes every metric, and turns every failure into a Result.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from grader import protocol
from grader.core.files import MB, atomic_copy, weights_path
from grader.core.results import Mode, Result, Status
from grader.core.spec import Spec
from grader.core.submission import Submission
from grader.jobs import audit, scoring
from grader.jobs.context import GradingContext
from grader.jobs.stopped import stopped_in
from grader.jobs.untrusted import (
    UntrustedFileError,
    Weights,
    read_report,
    read_scores,
    sanitize_weights,
)
from grader.jobs.verdict import base_row, scored
from grader.protocol import ChildReport, Phase, Task
from grader.sandbox.box import Sandbox, SandboxError
from grader.sandbox.supervise import JobOutcome, Limits
from grader.sandbox.workspace import job_folders, workspace

T = TypeVar("T")


class JobFailed(Exception):
    def __init__(
        self,
        status: Status,
        message: str,
        log_tail: str = "",
        checks: tuple[protocol.CheckRecord, ...] = (),
        stage: str = "",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.log_tail = status, message, log_tail
        self.checks = checks  # the contract checks the failing phase reported, if any
        self.stage = stage  # where a job stopped at its limit was (a protocol.Stage), if known


def grade(submission: Submission, ctx: GradingContext, sandbox: Sandbox) -> Result:
    """Grade one submission in the sandbox; never raises for anything the submission does."""
    base = _base(submission, ctx, now())
    try:
        graded = _grade(submission, ctx, sandbox, base.mode, base)
    except JobFailed as failure:
        graded = replace(
            base,
            status=failure.status,
            message=failure.message,
            log_tail=failure.log_tail,
            checks=_checks(failure.checks),
            stage=failure.stage,
        )
    return replace(graded, finished_at=now())


def failed(
    submission: Submission,
    ctx: GradingContext,
    status: Status,
    message: str,
    log_tail: str = "",
    started_at: str = "",
) -> Result:
    """The row of a submission whose grading ended outside grade(), e.g. a Slurm task that was
    killed: keyed like any other attempt, so the store can tell whether to grade it again."""
    base = _base(submission, ctx, started_at or now())
    return replace(base, status=status, message=message, log_tail=log_tail, finished_at=now())


def _base(submission: Submission, ctx: GradingContext, started: str) -> Result:
    mode = resolve_mode(ctx.settings.mode, submission)
    return base_row(ctx, submission.student, submission.content_hash, mode, started)


def resolve_mode(mode: Mode | str, submission: Submission) -> Mode:
    if Mode(mode) is Mode.AUTO:
        return Mode.LOAD if submission.weights else Mode.RETRAIN
    return Mode(mode)


def job_limits(spec: Spec, timeout_seconds: float | None = None) -> Limits:
    b = spec.budgets
    return Limits(
        timeout_seconds=timeout_seconds or b.timeout_seconds,
        memory_bytes=b.memory_bytes,
        max_processes=b.max_processes,
        max_file_bytes=max(b.max_weights_mb, 64) * MB,
        max_open_files=b.max_open_files,
        max_output_bytes=b.output_bytes,
        threads=spec.grading.threads,
        cpu_seconds=b.cpu_seconds,
    )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _grade(
    sub: Submission, ctx: GradingContext, sandbox: Sandbox, mode: Mode, base: Result
) -> Result:
    if sub.problem:
        raise JobFailed(Status.INVALID, sub.problem)
    with workspace() as work:
        report = ChildReport(Status.OK)
        if mode is Mode.LOAD:
            weights = _submitted_weights(sub, work, ctx.spec.budgets.weights_bytes)
        else:
            weights, report = _train(sub, ctx, sandbox, work / "train")
            if ctx.settings.verify_determinism or ctx.spec.grading.verify_determinism:
                again, _ = _train(sub, ctx, sandbox, work / "train-again")
                if again.sha256 != weights.sha256:
                    raise JobFailed(
                        Status.NONDETERMINISTIC,
                        "training twice with the grader's seed "
                        "gave different weights; do not re-seed from the clock or "
                        "use nondeterministic operations",
                        checks=report.checks,
                    )
        try:
            mixed, predicted, evaluated, eval_report, probabilities = _evaluate(
                sub, ctx, sandbox, work / "eval", weights
            )
        except JobFailed as failure:  # the checks training passed still count
            failure.checks = failure.checks or report.checks
            raise
        kept = weights if mode in (Mode.RETRAIN, Mode.VERIFY) else evaluated
        if ctx.first_seed:
            _keep_weights(kept, ctx.settings.weights_dir, sub)
        submitted = _submitted_accuracy(sub, ctx, sandbox, work) if mode is Mode.VERIFY else None
    return replace(
        scored(base, ctx, mixed, predicted),
        submitted_accuracy=submitted,
        checks=_checks(report.checks or eval_report.checks),
        # Counted from the file the grader hashed and handed to the eval job, never from
        # anything the eval job wrote (student code could forge it).
        params=weights.params,
        epochs=report.epochs,
        train_seconds=report.train_seconds,
        history=[dataclasses.asdict(record) for record in report.history],
        best_epoch=report.best_epoch,
        weights_sha256=kept.sha256,
        probability_outputs=probabilities,
        changed_outputs=eval_report.changed_outputs,
        loss=report.loss,
        scheduler=report.scheduler,
        weight_decay=report.weight_decay,
        trained_accuracy=report.trained_accuracy,
        own_hparams=dict(report.own_hparams),
        hparam_warnings=list(report.hparam_warnings),
    )


def _submitted_accuracy(
    sub: Submission, ctx: GradingContext, sandbox: Sandbox, work: Path
) -> float:
    """--mode verify: the test accuracy of the weights the student submitted."""
    weights = _submitted_weights(sub, work, ctx.spec.budgets.weights_bytes)
    mixed, predicted, _, _, _ = _evaluate(sub, ctx, sandbox, work / "eval-submitted", weights)
    return scoring.accuracy(mixed.parts(predicted).test, ctx.data.load("test_labels"))


def _task(ctx: GradingContext, phase: Phase, weights: str | None = None) -> Task:
    spec = ctx.spec
    return Task(
        phase=phase,
        seed=ctx.seed,
        threads=spec.grading.threads,
        max_epochs=spec.budgets.max_epochs,
        input_shape=spec.assignment.input_shape,
        num_classes=spec.assignment.num_classes,
        weights=weights,
        device=ctx.environment.device,
    )


TRAIN_FILES = {protocol.inputs_file("train"): "train_inputs", protocol.TRAIN_LABELS: "train_labels"}


def _train(
    sub: Submission, ctx: GradingContext, sandbox: Sandbox, job: Path
) -> tuple[Weights, ChildReport]:
    in_dir, out_dir = _job_inputs(job, sub, ctx, TRAIN_FILES)
    outcome, report = _run(ctx, sandbox, _task(ctx, Phase.TRAIN), in_dir, out_dir, job)
    # The child times its own training; it may only ever claim less than the job took.
    claimed = report.train_seconds
    seconds = None if claimed is None else min(max(claimed, 0.0), outcome.seconds)
    weights = _accept(
        lambda: sanitize_weights(
            out_dir / protocol.MODEL, job / "trained.safetensors", ctx.spec.budgets.weights_bytes
        ),
        outcome,
        report,
    )
    return weights, replace(report, train_seconds=seconds)


def _evaluate(
    sub: Submission, ctx: GradingContext, sandbox: Sandbox, job: Path, weights: Weights
) -> tuple[audit.Mixed, np.ndarray, Weights, ChildReport, float]:
    """One evaluation job on one blind array (audit.py): the training sample, the test inputs,
    their changed copies and the hold-out, so no row says which part it belongs to. Returns
    the predicted classes, the weights evaluated, the child's report, and the share of outputs
    that were already probabilities."""
    in_dir, out_dir = _job_inputs(job, sub, ctx, {})
    mixed = blind_inputs(ctx)
    np.save(in_dir / protocol.EVAL_INPUTS, mixed.inputs, allow_pickle=False)
    name = protocol.WEIGHTS_STEM + weights.path.suffix
    shutil.copyfile(weights.path, in_dir / name)
    outcome, report = _run(ctx, sandbox, _task(ctx, Phase.EVAL, name), in_dir, out_dir, job)
    classes = ctx.spec.assignment.num_classes
    predicted = _accept(
        lambda: read_scores(out_dir / protocol.SCORES, len(mixed.inputs), classes),
        outcome,
        report,
    )
    evaluated = _accept(
        lambda: sanitize_weights(
            out_dir / protocol.MODEL, job / "evaluated.safetensors", ctx.spec.budgets.weights_bytes
        ),
        outcome,
        report,
    )
    # read_scores checked this file's shape, dtype and values, and the child has exited.
    scores = np.load(out_dir / protocol.SCORES, allow_pickle=False)
    return mixed, predicted, evaluated, report, scoring.probability_share(scores)


def blind_inputs(ctx: GradingContext) -> audit.Mixed:
    """The blind array of this context's seed: the same for submissions and baselines, so
    mixed once per data, hold-out, audit and seed (and kept read-only), not once per job."""
    holdout = ctx.holdout
    key = (ctx.data.checksum, holdout.checksum if holdout else "", ctx.spec.audit, ctx.seed)
    with _MIXING:
        mixed = _MIXED.get(key)
        if mixed is None:
            train, test = ctx.data.load("train_inputs"), ctx.data.load("test_inputs")
            held = holdout.inputs if holdout else None
            mixed = audit.mix(train, test, held, ctx.spec.audit, ctx.seed)
            mixed.inputs.setflags(write=False)
            while len(_MIXED) >= KEEP_MIXED:
                del _MIXED[next(iter(_MIXED))]  # the oldest
            _MIXED[key] = mixed
    return mixed


KEEP_MIXED = 8  # blind arrays kept: a run mixes one per assignment and seed
_MIXED: dict[tuple[object, ...], audit.Mixed] = {}
_MIXING = threading.Lock()


def _checks(records: tuple[protocol.CheckRecord, ...]) -> list[dict[str, object]]:
    return [{"name": r.name, "passed": r.passed} for r in records]


def _submitted_weights(sub: Submission, work: Path, max_bytes: int) -> Weights:
    if sub.weights is None:
        raise JobFailed(
            Status.INVALID,
            f"mode load needs {sub.assignment}.safetensors or "
            f"{sub.assignment}.pt beside the submission",
        )
    if sub.weights.suffix == ".safetensors":
        try:
            return sanitize_weights(sub.weights, work / "submitted.safetensors", max_bytes)
        except UntrustedFileError as exc:
            raise JobFailed(Status.INVALID, str(exc)) from None
    # A pickle-based .pt file is only ever opened inside the sandbox, with weights_only=True:
    # the grader has no file of its own to count, and the eval job's count is the student's
    # word, so the row shows no parameter count (it ranks after equal rows that have one).
    copy = work / "submitted.pt"
    shutil.copyfile(sub.weights, copy)
    return Weights(copy, "", None)


def _job_inputs(
    job: Path, sub: Submission, ctx: GradingContext, files: dict[str, str]
) -> tuple[Path, Path]:
    """The job's folders, with the source and its data files (name in the job -> cached part).
    Only public parts exist to be copied: the test labels are never in a job. Copies, never
    links: a job that could write to its inputs would write into the cache every job reads."""
    in_dir, out_dir = job_folders(job)
    shutil.copyfile(sub.source, in_dir / protocol.SOURCE)
    for name, part in files.items():
        shutil.copyfile(ctx.data.public_dir / f"{part}.npy", in_dir / name)
    return in_dir, out_dir


def _run(
    ctx: GradingContext, sandbox: Sandbox, task: Task, in_dir: Path, out_dir: Path, job: Path
) -> tuple[JobOutcome, ChildReport]:
    limits = job_limits(ctx.spec, ctx.settings.timeout_seconds)
    outcome = sandbox.run(task, in_dir, out_dir, job / f"{task.phase}.log", limits)
    report = read_report(out_dir / protocol.REPORT)
    _raise_for_breach(sandbox, outcome, task.phase)
    _raise_for_outcome(ctx, outcome, report, task.phase, limits, out_dir)
    assert report is not None
    return outcome, report


def _raise_for_outcome(
    ctx: GradingContext,
    outcome: JobOutcome,
    report: ChildReport | None,
    phase: Phase,
    limits: Limits,
    out_dir: Path,
) -> None:
    tail, budgets = outcome.log_tail, ctx.spec.budgets
    if outcome.out_of_memory:
        at = stopped_in(out_dir)
        what = f"{phase} used more than its {budgets.memory_mb} MB of memory{at.words}"
        raise JobFailed(Status.MEMORY, what, tail, stage=at.stage)
    if outcome.timed_out:
        at = stopped_in(out_dir, limits.timeout_seconds)
        what = f"{phase} took longer than {limits.timeout_seconds:g} s{at.words}"
        raise JobFailed(Status.TIMEOUT, what, tail, stage=at.stage)
    if outcome.output_exceeded:
        raise JobFailed(Status.INVALID, f"{phase} {outcome.overflow}", tail)
    signal_name = outcome.signal_name
    if signal_name == "SIGXCPU":
        cpu = limits.cpu_seconds
        at = stopped_in(out_dir, cpu, "s of CPU time")
        budget = f"its {cpu:g} s of CPU time" if cpu else "its CPU time limit"
        what = f"{phase} used up {budget}{at.words}"
        raise JobFailed(Status.TIMEOUT, what, tail, stage=at.stage)
    if signal_name == "SIGXFSZ":
        raise JobFailed(Status.INVALID, f"{phase} wrote a file over the size limit", tail)
    if report is None:
        how = (
            f"was killed by {signal_name}"
            if signal_name
            else f"exited with code {outcome.returncode}"
        )
        raise JobFailed(Status.CRASHED, f"{phase} {how} before reporting a result", tail)
    if report.status is not Status.OK:
        raise JobFailed(report.status, f"{phase}: {report.message}", tail, report.checks)


def _raise_for_breach(sandbox: Sandbox, outcome: JobOutcome, phase: Phase) -> None:
    """A job that lacked a promised layer was stopped before any student code ran."""
    problems = [f"{layer}: {p}" for layer, p in outcome.breaches if layer != "start"]
    if outcome.timed_out or not problems:
        return  # a child that never started is a crash (or a timeout), reported below
    message = f"{phase} was stopped before the submission ran: " + "; ".join(problems)
    if sandbox.required:
        raise SandboxError("--require-sandbox: " + message)
    raise JobFailed(Status.SANDBOX, message, outcome.log_tail)


def _accept(read: Callable[[], T], outcome: JobOutcome, report: ChildReport) -> T:
    """Read a child's output; anything wrong with it makes the submission `invalid`."""
    try:
        return read()
    except UntrustedFileError as exc:
        raise JobFailed(Status.INVALID, str(exc), outcome.log_tail, report.checks) from None


def _keep_weights(weights: Weights, weights_dir: Path | None, sub: Submission) -> None:
    if weights_dir is None or weights.path.suffix != ".safetensors":
        return
    atomic_copy(weights.path, weights_path(weights_dir, sub.assignment, sub.student))
