"""The grader's own counting gives scikit-learn's figures bit for bit (it is numpy, so a run
need not import scikit-learn to score)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.metrics import confusion_matrix as sklearn_confusion

from grader.jobs.scoring import accuracy, confusion_matrix, part_scores


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_and_confusion_are_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(2, 12))
    labels = rng.integers(0, classes, size=int(rng.integers(1, 5000)))
    wrong = rng.integers(0, classes, len(labels))
    predicted = np.where(rng.random(len(labels)) < 0.8, labels, wrong)
    assert accuracy(predicted, labels) == accuracy_score(labels, predicted)
    expected = sklearn_confusion(labels, predicted, labels=np.arange(classes))
    assert np.array_equal(confusion_matrix(predicted, labels, classes), expected)


def test_a_class_never_seen_has_no_accuracy_and_outsiders_are_not_counted() -> None:
    labels = np.array([0, 0, 1, 1, 3])
    predicted = np.array([0, 1, 1, 1, 0])
    scores = part_scores(predicted, labels, 3)  # class 3 is outside the 3 classes
    assert scores.confusion == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert scores.class_accuracy == [0.5, 1.0, None]
    assert scores.accuracy == accuracy_score(labels, predicted)
