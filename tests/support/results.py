"""Results as a finished grading leaves them, for tests of what is built from the store."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from grader.core.results import Result
from support.course import HAR


def graded(student: str, test: float, **changes: object) -> Result:
    """An ok HAR row with test accuracy `test`, its targets as the spec would judge them."""
    values: dict[str, object] = {
        "student": student,
        "assignment": "har",
        "status": "ok",
        "test_accuracy": test,
        "train_accuracy": test + 0.01,
        "gap": 0.01,
        "targets": {"A": test > 0.96, "B": test > 0.975},
        "params": 1000,
        "finished_at": "2024-01-01T00:00:00+00:00",
    }
    values.update(changes)
    return Result(**values)  # type: ignore[arg-type]


def ok(
    student: str,
    test: float,
    gap: float = 0.01,
    params: int = 1000,
    assignment: str = "mnist",
    targets: dict[str, bool] | None = None,
    **extra: Any,
) -> Result:
    met = {"A": test > 0.96 and gap < 0.02, "B": test > 0.975} if targets is None else targets
    return Result(
        student=student,
        assignment=assignment,
        status="ok",
        test_accuracy=test,
        train_accuracy=round(test + gap, 6),
        gap=gap,
        targets=met,
        params=params,
        epochs=3,
        train_seconds=1.234,
        weights_sha256="ab" * 32,
        finished_at="2024-01-01T00:00:00+00:00",
        **extra,
    )


def failed(
    student: str, status: str = "error", assignment: str = "mnist", message: str = "boom"
) -> Result:
    return Result(
        student=student,
        assignment=assignment,
        status=status,
        message=message,
        targets={"A": True, "B": True},
    )


def baseline(test: float = 0.955, assignment: str = "har") -> Result:
    return Result(
        student="logistic-regression",
        assignment=assignment,
        status="ok",
        test_accuracy=test,
        train_accuracy=0.99,
        gap=round(0.99 - test, 6),
        targets={"A": False, "B": False},
        params=3372,
        kind="baseline",
        finished_at="2024-01-02T00:00:00+00:00",
    )


def history(
    losses: list[float | None], accuracies: list[float] | None = None
) -> list[dict[str, Any]]:
    accuracies = accuracies or [0.5 + 0.04 * i for i in range(len(losses))]
    return [
        {"epoch": i + 1, "loss": loss, "accuracy": acc, "val_accuracy": None, "lr": 1e-3}
        for i, (loss, acc) in enumerate(zip(losses, accuracies, strict=True))
    ]


def detailed(train: float = 0.985, test: float = 0.9653, **changes: Any) -> Result:
    """An ok HAR row of alice's with all a report draws on: history, confusion, checks."""
    confusion = (np.eye(6, dtype=int) * 50 + np.arange(36).reshape(6, 6) % 3).tolist()
    base = Result(
        student="alice",
        assignment="har",
        status="ok",
        test_accuracy=test,
        train_accuracy=train,
        gap=round(train - test, 6),
        targets={t.name: t.is_met(test, train - test) for t in HAR.targets},
        params=144_006,
        epochs=10,
        train_seconds=12.34,
        history=history([1.2, 0.8, 0.6, 0.5, 0.45, 0.4, 0.38, 0.36, 0.35, 0.34]),
        confusion={"train": confusion, "test": confusion},
        class_accuracy={"train": [0.99] * 6, "test": [0.98, 0.97, 0.95, 0.91, 0.93, 1.0]},
        checks=[{"name": "defines_build_model", "passed": True}],
        seed=0,
        device="cpu",
        torch_version="2.5.0",
        finished_at="2026-01-01T00:00:00+00:00",
    )
    return replace(base, **changes)
