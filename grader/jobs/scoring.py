"""Scores, computed by the grader alone from the children's predictions and its own labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix

from grader.core.spec import Target


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
    met = {t.name: t.is_met(test.accuracy, train.accuracy - test.accuracy) for t in targets}
    return Scores(train, test, met)


def part_scores(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> PartScores:
    matrix = confusion_matrix(np.asarray(labels), predicted, labels=np.arange(num_classes))
    totals = matrix.sum(axis=1)
    per_class = [float(matrix[c, c] / totals[c]) if totals[c] else None for c in range(num_classes)]
    return PartScores(accuracy(predicted, labels), matrix.astype(int).tolist(), per_class)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(accuracy_score(np.asarray(labels), predicted))
