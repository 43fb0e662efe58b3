"""The perturbation audit's inputs: what the evaluation child predicts on, and how to split it.

The child sees one array, the test inputs, imperceptibly changed copies of them and the private
hold-out inputs, shuffled together by a permutation only the grader knows. A model that learned
the task predicts the same on an input and its copy; one that looks answers up by the exact
input does not. Labels never come near this module: the figures are computed in scoring.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.core.spec import Audit

# Keeps the audit's draws apart from every other use of the grading seed.
SALT = 0x5EED_A0D1


@dataclass(frozen=True)
class Mixed:
    inputs: np.ndarray  # what the child predicts on, in shuffled order
    order: np.ndarray  # order[i]: the row of the unshuffled stack at position i
    test_size: int
    holdout_size: int

    def parts(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predictions on the originals, on their copies and on the hold-out, in data order."""
        stacked = np.empty_like(predicted)
        stacked[self.order] = predicted
        n = self.test_size
        return stacked[:n], stacked[n : 2 * n], stacked[2 * n :]


def mix(test: np.ndarray, holdout: np.ndarray | None, audit: Audit, seed: int) -> Mixed:
    rng = np.random.default_rng([SALT, seed])
    copies = perturb(test, audit, rng)
    extra = holdout if holdout is not None else test[:0]
    stacked = np.concatenate([test, copies, extra.astype(test.dtype, copy=False)])
    order = rng.permutation(len(stacked))
    return Mixed(stacked[order], order, len(test), len(extra))


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
