"""Scores, computed by the grader alone from the children's predictions and its own labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score

from grader.core.spec import Target


@dataclass(frozen=True)
class Scores:
    train_accuracy: float
    test_accuracy: float
    targets: dict[str, bool]

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
) -> Scores:
    train = accuracy(train_predicted, train_labels)
    test = accuracy(test_predicted, test_labels)
    return Scores(train, test, {t.name: t.is_met(test, train - test) for t in targets})


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(accuracy_score(np.asarray(labels), predicted))
