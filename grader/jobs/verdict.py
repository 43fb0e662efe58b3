"""From predictions on the blind array to a row: the one scoring path of submissions and
baselines alike. The labels are the grader's; the predictions are all a job contributes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from grader.core.results import STUDENT, Mode, Result, Status
from grader.jobs import audit, scoring
from grader.jobs.context import GradingContext
from grader.similarity.predictions import pack


def base_row(
    ctx: GradingContext,
    student: str,
    content_hash: str,
    mode: Mode,
    started_at: str,
    *,
    kind: str = STUDENT,
    device: str | None = None,
) -> Result:
    """A row before it is scored (status error until it is): what it is and how it is graded."""
    return Result(
        student=student,
        assignment=ctx.spec.name,
        status=Status.ERROR,
        kind=kind,
        mode=mode,
        seed=ctx.seed,
        threads=ctx.spec.grading.threads,
        content_hash=content_hash,
        spec_digest=ctx.spec.digest,
        data_checksum=ctx.data.checksum,
        torch_version=ctx.environment.torch_version,
        device=device or ctx.environment.device,
        cpu=ctx.environment.cpu,
        started_at=started_at,
    )


def scored(row: Result, ctx: GradingContext, mixed: audit.Mixed, predicted: np.ndarray) -> Result:
    """row with its accuracies, audit figures and verdict, from the predicted classes."""
    parts = mixed.parts(predicted)
    test_labels = ctx.data.load("test_labels")
    scores = scoring.score(
        parts.train,
        parts.test,
        ctx.data.load("train_labels")[mixed.train_rows],
        test_labels,
        ctx.spec.targets,
        ctx.spec.assignment.num_classes,
    )
    held = None if ctx.holdout is None else ctx.holdout.labels
    figures = scoring.audit_figures(parts, test_labels, held)
    return replace(
        row,
        **_verdict(row, ctx, scores, figures),
        test_accuracy=scores.test_accuracy,
        train_accuracy=scores.train_accuracy,
        gap=scores.gap,
        confusion={"train": scores.train.confusion, "test": scores.test.confusion},
        class_accuracy={"train": scores.train.class_accuracy, "test": scores.test.class_accuracy},
        agreement=figures.agreement,
        perturbed_drop=figures.perturbed_drop,
        holdout_accuracy=figures.holdout_accuracy,
        self_agreement=figures.self_agreement if figures.repeats else None,
        holdout="" if ctx.holdout is None else ctx.holdout.description,
        test_predictions={str(ctx.seed): pack(parts.test)},
    )


def _verdict(
    row: Result, ctx: GradingContext, scores: scoring.Scores, figures: scoring.AuditFigures
) -> dict[str, Any]:
    """ok with the targets met, or flagged (no targets) naming every audit signal that fired;
    a row an instructor reviewed is ok, and says what the audit saw. A model that disagrees
    with itself at evaluation says so either way: that is a bug to fix, not cheating."""
    sizes = (ctx.data.test_size, 0 if ctx.holdout is None else len(ctx.holdout.labels))
    fired = scoring.audit_signals(
        figures, scores.test_accuracy, scores.train_accuracy, sizes, ctx.spec.audit
    )
    said = scoring.audit_message(fired, scoring.noise_note(figures, ctx.spec.audit))
    if not fired:
        return {"status": Status.OK, "targets": scores.targets, "message": said}
    if (row.student, row.content_hash) in ctx.reviewed:
        return {"status": Status.OK, "targets": scores.targets, "message": said + " (reviewed)"}
    return {"status": Status.FLAGGED, "targets": {}, "message": said}
