"""Grading one submission: a training job, an evaluation job, and the scores computed here.

Student code only ever runs in sandboxed children. This process holds the labels, reads the
children's files as untrusted, computes every metric, and turns every failure into a Result.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sklearn.metrics import accuracy_score

from grader import __version__
from grader.datasets import PreparedData
from grader.sandbox import JobOutcome, Limits, Sandbox
from grader.spec import Spec
from grader.submission import Submission
from grader.untrusted import UntrustedFileError, Weights, read_report, read_scores, sanitize_weights

MODES = ("retrain", "load", "auto")
WORKSPACE_PREFIX = "grader-job-"
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    student: str
    assignment: str
    status: str
    message: str = ""
    test_accuracy: float | None = None
    train_accuracy: float | None = None
    gap: float | None = None
    targets: dict[str, bool] = field(default_factory=dict)
    params: int | None = None
    epochs: int | None = None
    train_seconds: float | None = None
    mode: str = "retrain"
    seed: int = 0
    threads: int = 1
    weights_sha256: str | None = None
    log_tail: str = ""
    content_hash: str = ""
    spec_digest: str = ""
    data_checksum: str = ""
    grader_version: str = __version__
    started_at: str = ""
    finished_at: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class GradingContext:
    spec: Spec
    data: PreparedData
    sandbox: Sandbox
    mode: str = "retrain"
    timeout_seconds: float | None = None
    weights_dir: Path | None = None
    verify_determinism: bool = False


class JobFailed(Exception):
    def __init__(self, status: str, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.log_tail = status, message, log_tail


def grade(submission: Submission, ctx: GradingContext) -> Result:
    """Grade one submission; never raises for anything the submission does."""
    started = now()
    mode = resolve_mode(ctx.mode, submission)
    base = Result(
        student=submission.student,
        assignment=submission.assignment,
        status="error",
        mode=mode,
        seed=ctx.spec.grading.seed,
        threads=ctx.spec.grading.threads,
        content_hash=submission.content_hash,
        spec_digest=ctx.spec.digest,
        data_checksum=ctx.data.checksum,
        started_at=started,
    )
    try:
        graded = _grade(submission, ctx, mode, base)
    except JobFailed as failure:
        graded = replace(
            base, status=failure.status, message=failure.message, log_tail=failure.log_tail
        )
    return replace(graded, finished_at=now())


def resolve_mode(mode: str, submission: Submission) -> str:
    if mode == "auto":
        return "load" if submission.weights else "retrain"
    return mode


def _grade(sub: Submission, ctx: GradingContext, mode: str, base: Result) -> Result:
    if sub.problem:
        raise JobFailed("invalid", sub.problem)
    budgets = ctx.spec.budgets
    with _workspace() as work:
        epochs: int | None = None
        train_seconds: float | None = None
        if mode == "load":
            weights = _submitted_weights(sub, work, budgets.max_weights_mb << 20)
        else:
            weights, report = _train(sub, ctx, work / "train")
            epochs, train_seconds = report.get("epochs"), report.get("train_seconds")
            if ctx.verify_determinism or ctx.spec.grading.verify_determinism:
                again, _ = _train(sub, ctx, work / "train-again")
                if again.sha256 != weights.sha256:
                    raise JobFailed(
                        "nondeterministic",
                        "training twice with the grader's seed "
                        "gave different weights; do not re-seed from the clock or "
                        "use nondeterministic operations",
                    )
        train_pred, test_pred, evaluated = _evaluate(sub, ctx, work / "eval", weights)
        kept = weights if mode == "retrain" else evaluated
        _keep_weights(kept, ctx.weights_dir, sub)
    train_acc = _accuracy(train_pred, ctx.data.load("train_labels"))
    test_acc = _accuracy(test_pred, ctx.data.load("test_labels"))
    gap = train_acc - test_acc
    return replace(
        base,
        status="ok",
        test_accuracy=test_acc,
        train_accuracy=train_acc,
        gap=gap,
        targets={t.name: t.is_met(test_acc, gap) for t in ctx.spec.targets},
        params=evaluated.params,
        epochs=_int_or_none(epochs),
        train_seconds=train_seconds,
        weights_sha256=kept.sha256,
    )


def _train(sub: Submission, ctx: GradingContext, job: Path) -> tuple[Weights, dict[str, Any]]:
    _job_inputs(job, sub, ctx, ("train_inputs", "train_labels"))
    outcome, report = _run(ctx, "train", job)
    # The child times its own training; it may only ever claim less than the job took.
    claimed = _float_or_none(report.get("train_seconds"))
    report["train_seconds"] = None if claimed is None else min(max(claimed, 0.0), outcome.seconds)
    weights = _accept(
        lambda: sanitize_weights(
            job / "out" / "model.safetensors",
            job / "trained.safetensors",
            ctx.spec.budgets.max_weights_mb << 20,
        ),
        outcome,
    )
    return weights, report


def _evaluate(
    sub: Submission, ctx: GradingContext, job: Path, weights: Weights
) -> tuple[np.ndarray, np.ndarray, Weights]:
    in_dir = _job_inputs(job, sub, ctx, ("train_inputs", "test_inputs"))
    shutil.copyfile(weights.path, in_dir / ("weights" + weights.path.suffix))
    outcome, _ = _run(ctx, "eval", job, weights_name="weights" + weights.path.suffix)
    out, classes = job / "out", ctx.spec.assignment.num_classes
    train_pred = _accept(
        lambda: read_scores(out / "train_scores.npy", ctx.data.train_size, classes), outcome
    )
    test_pred = _accept(
        lambda: read_scores(out / "test_scores.npy", ctx.data.test_size, classes), outcome
    )
    evaluated = _accept(
        lambda: sanitize_weights(
            out / "model.safetensors",
            job / "evaluated.safetensors",
            ctx.spec.budgets.max_weights_mb << 20,
        ),
        outcome,
    )
    return train_pred, test_pred, evaluated


def _submitted_weights(sub: Submission, work: Path, max_bytes: int) -> Weights:
    if sub.weights is None:
        raise JobFailed(
            "invalid",
            f"mode load needs {sub.assignment}.safetensors or "
            f"{sub.assignment}.pt beside the submission",
        )
    if sub.weights.suffix == ".safetensors":
        try:
            return sanitize_weights(sub.weights, work / "submitted.safetensors", max_bytes)
        except UntrustedFileError as exc:
            raise JobFailed("invalid", str(exc)) from None
    # A pickle-based .pt file is only ever opened inside the sandbox, with weights_only=True.
    copy = work / "submitted.pt"
    shutil.copyfile(sub.weights, copy)
    return Weights(copy, "", 0)


def _job_inputs(job: Path, sub: Submission, ctx: GradingContext, parts: tuple[str, ...]) -> Path:
    in_dir, out_dir = job / "in", job / "out"
    in_dir.mkdir(parents=True)
    out_dir.mkdir()
    in_dir.chmod(0o755)
    shutil.copyfile(sub.source, in_dir / "submission.py")
    for part in parts:
        _link_or_copy(ctx.data.public_dir / f"{part}.npy", in_dir / f"{part}.npy")
    return in_dir


def _run(
    ctx: GradingContext, phase: str, job: Path, weights_name: str | None = None
) -> tuple[JobOutcome, dict[str, Any]]:
    spec = ctx.spec
    (job / "in" / "job.json").write_text(
        json.dumps(
            {
                "seed": spec.grading.seed,
                "threads": spec.grading.threads,
                "max_epochs": spec.budgets.max_epochs,
                "input_shape": list(spec.assignment.input_shape),
                "num_classes": spec.assignment.num_classes,
                "weights": weights_name,
            }
        )
    )
    for path in (job / "in").iterdir():
        path.chmod(0o644)
    limits = job_limits(spec, ctx.timeout_seconds)
    outcome = ctx.sandbox.run(phase, job / "in", job / "out", job / f"{phase}.log", limits)
    report = read_report(job / "out" / "report.json")
    _raise_for_outcome(outcome, report, phase, spec, limits)
    assert report is not None
    return outcome, report


def job_limits(spec: Spec, timeout_seconds: float | None = None) -> Limits:
    b = spec.budgets
    return Limits(
        timeout_seconds=timeout_seconds or b.timeout_seconds,
        memory_bytes=b.memory_mb << 20,
        max_processes=b.max_processes,
        max_file_bytes=max(b.max_weights_mb, 64) << 20,
        max_open_files=b.max_open_files,
        max_output_bytes=b.max_output_mb << 20,
        threads=spec.grading.threads,
    )


def _raise_for_outcome(
    outcome: JobOutcome, report: dict[str, Any] | None, phase: str, spec: Spec, limits: Limits
) -> None:
    tail = outcome.log_tail
    if outcome.out_of_memory:
        raise JobFailed(
            "memory", f"{phase} used more than its {spec.budgets.memory_mb} MB of memory", tail
        )
    if outcome.timed_out:
        raise JobFailed("timeout", f"{phase} took longer than {limits.timeout_seconds:g} s", tail)
    if outcome.output_exceeded:
        raise JobFailed("invalid", f"{phase} wrote more than {spec.budgets.max_output_mb} MB", tail)
    signal_name = outcome.signal_name
    if signal_name == "SIGXCPU":
        raise JobFailed("timeout", f"{phase} used up its CPU time limit", tail)
    if signal_name == "SIGXFSZ":
        raise JobFailed("invalid", f"{phase} wrote a file over the size limit", tail)
    if report is None:
        how = (
            f"was killed by {signal_name}"
            if signal_name
            else f"exited with code {outcome.returncode}"
        )
        raise JobFailed("crashed", f"{phase} {how} before reporting a result", tail)
    if report["status"] != "ok":
        raise JobFailed(report["status"], f"{phase}: {report['message']}", tail)


def _accept(read: Callable[[], T], outcome: JobOutcome) -> T:
    """Read a child's output; anything wrong with it makes the submission `invalid`."""
    try:
        return read()
    except UntrustedFileError as exc:
        raise JobFailed("invalid", str(exc), outcome.log_tail) from None


def _keep_weights(weights: Weights, weights_dir: Path | None, sub: Submission) -> None:
    if weights_dir is None or weights.path.suffix != ".safetensors":
        return
    dest = weights_dir / sub.assignment / f"{sub.student}.safetensors"
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    shutil.copyfile(weights.path, partial)
    os.replace(partial, dest)


@contextmanager
def _workspace() -> Iterator[Path]:
    """A private folder per submission, traversable (not listable) by the job uids."""
    path = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale_workspaces() -> None:
    """Remove what graders killed mid-job (kill -9, power loss) left in the temp folder."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORKSPACE_PREFIX}*-*"):
        owner = folder.name[len(WORKSPACE_PREFIX) :].split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(accuracy_score(np.asarray(labels), predicted))


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
