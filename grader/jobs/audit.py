"""The one blind array the evaluation child predicts on, and how to split its predictions.

The child sees one array: a seeded sample of the training inputs, the test inputs,
imperceptibly changed copies of them, some test inputs a second time unchanged, and the private
hold-out inputs, shuffled together by a permutation only the grader knows. It cannot tell a
training row from a test row except by recognising it, so it cannot answer training rows
differently to steer the gap. A model that learned the task predicts the same on an input and
its copy; one that looks answers up by the exact input does not; one that disagrees with itself
on the very same input is noisy, not a cheat. Labels never come near this module: the figures
are computed in scoring.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.core.spec import Audit

# Keeps the audit's draws apart from every other use of the grading seed.
SALT = 0x5EED_A0D1
# Train sets up to this many rows are evaluated whole; a larger one (MNIST's 60,000) on a seeded
# sample of the test set's size (at least this many rows), which keeps evaluation cheap.
FULL_TRAIN_ROWS = 10_000
# Test inputs put in the array twice, unchanged, to measure how often a model agrees with itself
# (dropout left on at evaluation does not): enough to measure it within a point or two.
REPEATED_ROWS = 2_000


@dataclass(frozen=True)
class Parts:
    """Predictions on each part of the blind array, in data order."""

    train: np.ndarray  # on the sampled training rows, Mixed.train_rows
    test: np.ndarray
    copies: np.ndarray  # on the changed copies of the test inputs, row for row
    repeats: np.ndarray  # on the test rows `repeated`, a second time
    holdout: np.ndarray
    repeated: np.ndarray  # the test rows that are in the array twice, ascending


@dataclass(frozen=True)
class Mixed:
    inputs: np.ndarray  # what the child predicts on, in shuffled order
    order: np.ndarray  # order[i]: the row of the unshuffled stack at position i
    train_rows: np.ndarray  # the training set's rows in the sample, ascending
    repeated: np.ndarray  # the test rows that are in the array twice, ascending
    sizes: tuple[int, int, int, int, int]  # train sample, test, copies, repeats, hold-out

    def parts(self, predicted: np.ndarray) -> Parts:
        stacked = np.empty_like(predicted)
        stacked[self.order] = predicted
        train, test, copies, repeats, holdout = np.split(stacked, np.cumsum(self.sizes)[:-1])
        return Parts(train, test, copies, repeats, holdout, self.repeated)


def train_sample(train_size: int, test_size: int, seed: int) -> np.ndarray:
    """The training rows evaluated: all of them, or a seeded sample (the same for every
    submission and baseline graded with this seed, so their train accuracies compare)."""
    rows = min(train_size, max(test_size, FULL_TRAIN_ROWS))
    if rows == train_size:
        return np.arange(train_size)
    rng = np.random.default_rng([SALT, seed, train_size])
    return np.sort(rng.choice(train_size, rows, replace=False))


def mix(
    train: np.ndarray, test: np.ndarray, holdout: np.ndarray | None, audit: Audit, seed: int
) -> Mixed:
    rng = np.random.default_rng([SALT, seed])
    copies = perturb(test, audit, rng)
    repeated = np.sort(rng.choice(len(test), min(len(test), REPEATED_ROWS), replace=False))
    rows = train_sample(len(train), len(test), seed)
    extra = holdout if holdout is not None else test[:0]
    stack = [np.asarray(train[rows]), test, copies, test[repeated], extra]
    stacked = np.concatenate([part.astype(test.dtype, copy=False) for part in stack])
    order = rng.permutation(len(stacked))
    sizes = (len(rows), len(test), len(copies), len(repeated), len(extra))
    return Mixed(stacked[order], order, rows, repeated, sizes)


def perturb(inputs: np.ndarray, audit: Audit, rng: np.random.Generator) -> np.ndarray:
    """A copy with `changed_values` values of each input moved: one step of the stored grid for
    integer images (one grey level, away from the end of the range), ±noise for float data."""
    flat = np.array(inputs, copy=True).reshape(len(inputs), -1)
    count = min(audit.changed_values, flat.shape[1])
    rows = np.repeat(np.arange(len(flat)), count)
    columns = np.concatenate([rng.choice(flat.shape[1], count, replace=False) for _ in flat])
    values = flat[rows, columns]
    if np.issubdtype(flat.dtype, np.integer):
        top = np.iinfo(flat.dtype).max
        flat[rows, columns] = np.where(values < top, values + 1, values - 1)
    else:
        signs = rng.choice(np.array([-1.0, 1.0]), len(rows))
        flat[rows, columns] = values + (signs * audit.noise).astype(flat.dtype)
    return flat.reshape(inputs.shape)
