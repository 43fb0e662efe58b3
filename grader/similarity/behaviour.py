"""Whether two models make the same mistakes more often than independent models would.

Error consistency (Geirhos et al., 2020) is Cohen's kappa on the two models' error indicators:
how often both are right or both wrong on a test example, against what independent errors at
their two accuracies would give. 0: as independent; 1: wrong on exactly the same examples.
Honest models are not independent (the same examples are hard for every model), so the
threshold a pair must pass is calibrated on honest pairs (bench/calibrate_similarity.py), never
taken from a test against independence, which every honest pair would fail.

A model that never answers some class is wrong on every example of it, as every such model is
(a network collapsed to one class, by a loss on the wrong outputs, makes one model's mistakes
on every seed): its mistakes say nothing about copying, and its pairs have no figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Behaviour:
    """Two models' test predictions compared, over the seeds both were graded on."""

    # None: both always right (nothing to compare), or a model never answers some class.
    error_consistency: float | None
    # Of the examples either model gets wrong, the share both get wrong with the same class.
    shared_wrong: float | None  # None: neither makes a mistake
    errors: tuple[int, int]  # each model's mistakes, over the seeds compared
    same_wrong: int  # examples both get wrong with the same class
    seeds: tuple[int, ...]


def compare(
    a: dict[int, np.ndarray], b: dict[int, np.ndarray], labels: np.ndarray
) -> Behaviour | None:
    """Each model's predicted classes by seed; None when they share no graded seed."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        return None
    first = np.concatenate([a[s] for s in seeds])
    second = np.concatenate([b[s] for s in seeds])
    truth = np.tile(labels, len(seeds))
    wrong_a, wrong_b = first != truth, second != truth
    same = int(np.sum(wrong_a & wrong_b & (first == second)))
    either = int(np.sum(wrong_a | wrong_b))
    every = answers_every_class(first, labels) and answers_every_class(second, labels)
    return Behaviour(
        error_consistency=_kappa(wrong_a, wrong_b) if every else None,
        shared_wrong=same / either if either else None,
        errors=(int(wrong_a.sum()), int(wrong_b.sum())),
        same_wrong=same,
        seeds=seeds,
    )


def answers_every_class(predicted: np.ndarray, labels: np.ndarray) -> bool:
    return bool(np.isin(np.unique(labels), predicted).all())


def _kappa(wrong_a: np.ndarray, wrong_b: np.ndarray) -> float | None:
    """Cohen's kappa of two boolean raters: scikit-learn's cohen_kappa_score to 1e-12
    (tests/test_similarity.py holds them together; the last bits differ by the order of the
    sums), without importing scikit-learn at the end of every run."""
    observed = float(np.mean(wrong_a == wrong_b))
    a, b = float(np.mean(wrong_a)), float(np.mean(wrong_b))
    chance = a * b + (1 - a) * (1 - b)
    if chance == 1:
        return None  # both always right (or always wrong): kappa is 0/0
    return (observed - chance) / (1 - chance)
