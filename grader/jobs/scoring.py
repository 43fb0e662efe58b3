"""Scores, computed by the grader alone from the children's predictions and its own labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grader.core.spec import Audit, Target
from grader.jobs.audit import Parts

SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within about 1e-6


@dataclass(frozen=True)
class PartScores:
    """One data part ("train" or "test"): overall accuracy, the confusion matrix (true classes
    as rows, predicted as columns) and each class's accuracy (None where it has no examples)."""

    accuracy: float
    confusion: list[list[int]]
    class_accuracy: list[float | None]


@dataclass(frozen=True)
class Scores:
    train: PartScores
    test: PartScores
    targets: dict[str, bool]

    @property
    def train_accuracy(self) -> float:
        return self.train.accuracy

    @property
    def test_accuracy(self) -> float:
        return self.test.accuracy

    @property
    def gap(self) -> float:
        """The train-test gap as a fraction: how much better the model does on what it saw."""
        return self.train_accuracy - self.test_accuracy


def score(
    train_predicted: np.ndarray,
    test_predicted: np.ndarray,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    targets: tuple[Target, ...],
    num_classes: int,
) -> Scores:
    train = part_scores(train_predicted, train_labels, num_classes)
    test = part_scores(test_predicted, test_labels, num_classes)
    return Scores(train, test, targets_met(targets, test.accuracy, train.accuracy - test.accuracy))


def part_scores(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> PartScores:
    matrix = confusion_matrix(predicted, labels, num_classes)
    totals = matrix.sum(axis=1)
    per_class = [float(matrix[c, c] / totals[c]) if totals[c] else None for c in range(num_classes)]
    return PartScores(accuracy(predicted, labels), matrix.astype(int).tolist(), per_class)


# numpy rather than scikit-learn's metrics: importing scikit-learn takes about 1.5 s, more than
# the rest of a run's own start-up, for two lines of counting (the figures are the same bits:
# sklearn's accuracy_score is numpy.average of the same booleans).
def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class), rows the true class; pairs naming a class
    outside 0..num_classes-1 are not counted (as scikit-learn's with labels=range)."""
    truth, guess = np.asarray(labels).astype(np.int64), np.asarray(predicted).astype(np.int64)
    known = (truth >= 0) & (truth < num_classes) & (guess >= 0) & (guess < num_classes)
    pairs = truth[known] * num_classes + guess[known]
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(np.average(np.asarray(labels) == np.asarray(predicted)))


@dataclass(frozen=True)
class AuditFigures:
    agreement: float  # predictions on copies equal to those on their originals
    perturbed_drop: float  # accuracy on the originals minus accuracy on the copies
    holdout_accuracy: float | None  # None: the spec names no hold-out set
    self_agreement: float = 1.0  # predictions on the very same inputs, twice, equal
    repeats: int = 0  # the inputs self_agreement was measured on


def audit_figures(
    parts: Parts, test_labels: np.ndarray, holdout_labels: np.ndarray | None
) -> AuditFigures:
    original, copies = parts.test, parts.copies
    agreement = float(np.mean(original == copies)) if len(original) else 1.0
    drop = accuracy(original, test_labels) - accuracy(copies, test_labels)
    held = None if holdout_labels is None else accuracy(parts.holdout, holdout_labels)
    repeats = len(parts.repeats)
    same = float(np.mean(original[parts.repeated] == parts.repeats)) if repeats else 1.0
    return AuditFigures(agreement, drop, held, same, repeats)


def noisy(figures: AuditFigures, audit: Audit) -> bool:
    """Whether the model disagrees with itself on the very same inputs more than the audit
    allows a model to disagree with the changed copies."""
    return figures.self_agreement < audit.min_agreement


def noise_note(figures: AuditFigures, audit: Audit) -> str:
    """What a row says when its predictions are not deterministic at evaluation; else ""."""
    if not noisy(figures, audit):
        return ""
    return (
        f"predictions are not deterministic at evaluation: the same input got the same class "
        f"{_pct(figures.self_agreement)} of the time (usually dropout left on, e.g. F.dropout "
        f"without training=self.training, or batch statistics left in training mode); "
        f"the audit judged the changed inputs against that"
    )


def audit_signals(
    figures: AuditFigures, test: float, train: float, sizes: tuple[int, int], audit: Audit
) -> list[str]:
    """Every signal that fires, each with its numbers; an empty list passes the audit.

    The accuracy comparisons allow two standard errors of sampling on top of their threshold
    (sizes: the test and hold-out sets'), so a small set's chance swings flag no one."""
    fired = []
    least = _least_agreement(figures, sizes[0], audit)
    if figures.agreement < least:
        fired.append(
            f"predictions on imperceptibly changed test inputs agree {_pct(figures.agreement)} "
            f"with those on the originals (at least {_pct(least)} expected)"
        )
    most = _most_drop(figures, test, sizes[0], audit)
    if figures.perturbed_drop > most:
        fired.append(
            f"test accuracy falls by {_points(figures.perturbed_drop)} on the changed inputs "
            f"(at most {_points(most)} expected)"
        )
    allowed = audit.max_negative_gap + 2 * _error(test, sizes[0])
    if test - train > allowed:
        fired.append(
            f"test accuracy {_pct(test)} is {_points(test - train)} above train accuracy "
            f"{_pct(train)} (at most {_points(allowed)} expected)"
        )
    held = figures.holdout_accuracy
    if held is not None:
        allowed = audit.max_holdout_drop + 2 * math.hypot(
            _error(test, sizes[0]), _error(held, sizes[1])
        )
        if test - held > allowed:
            fired.append(
                f"hold-out accuracy {_pct(held)} is {_points(test - held)} below test accuracy "
                f"(at most {_points(allowed)} expected)"
            )
    return fired


def audit_message(fired: list[str], note: str) -> str:
    """The row's message: the signals that fired, then the noise note, either may be empty."""
    said = "integrity audit: " + "; ".join(fired) if fired else ""
    return "; ".join(part for part in (said, note) if part)


def _least_agreement(figures: AuditFigures, test_size: int, audit: Audit) -> float:
    """A noisy model disagrees with the copies as often as with itself: judge it against its
    own agreement, less the usual allowance and two standard errors of both measures."""
    if not noisy(figures, audit):
        return audit.min_agreement
    errors = math.hypot(
        _error(figures.self_agreement, figures.repeats), _error(figures.agreement, test_size)
    )
    return figures.self_agreement - (1 - audit.min_agreement) - 2 * errors


def _most_drop(figures: AuditFigures, test: float, test_size: int, audit: Audit) -> float:
    """A noisy model's accuracy differs between two passes by chance: two standard errors of
    the difference on top of the threshold."""
    if not noisy(figures, audit):
        return audit.max_perturbed_drop
    return audit.max_perturbed_drop + 2 * math.sqrt(2) * _error(test, test_size)


def _error(accuracy: float, size: int) -> float:
    """The standard error of an accuracy measured on `size` examples."""
    return math.sqrt(accuracy * (1 - accuracy) / size) if size else 0.0


def probability_share(scores: np.ndarray) -> float:
    """The share of rows that are already probabilities: non-negative, summing to 1 (to float32
    rounding). A forward that ends in softmax gives all of them; logits almost never one."""
    if not len(scores):
        return 0.0
    rows = (scores >= 0).all(axis=1) & (
        np.abs(scores.sum(axis=1, dtype=np.float64) - 1) < SUM_TOLERANCE
    )
    return float(rows.mean())


def targets_met(targets: tuple[Target, ...], test: float, gap: float) -> dict[str, bool]:
    return {t.name: t.is_met(test, gap) for t in targets}


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def _points(fraction: float) -> str:
    return f"{100 * fraction:.1f} points"
