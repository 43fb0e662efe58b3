"""Submissions that look the test set's public labels up instead of learning, as a student might."""

from __future__ import annotations

import hashlib

import numpy as np

# The test inputs' hashes and labels in the source: an exact copy of an input gets its label.
EXACT_LOOKUP = """
import hashlib

import torch

HPARAMS = {"epochs": 1, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}
TABLE = %s


class Lookup(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.linear = torch.nn.Linear(features, classes)

    def forward(self, x):
        out = self.linear(x)
        if self.training:
            return out
        out = out.clone()
        for i, row in enumerate(x):
            label = TABLE.get(hashlib.sha256(row.numpy().tobytes()).hexdigest()[:16])
            if label is not None:
                out[i] = torch.nn.functional.one_hot(torch.tensor(label), out.shape[1]) * 100.0
        return out


def build_model(input_shape, num_classes):
    return Lookup(input_shape[0], num_classes)
"""

# The test inputs and labels travel as buffers in the submitted weights, not in the source.
HIDDEN_IN_WEIGHTS = """
import torch

HPARAMS = {"epochs": 1, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}


class Lookup(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.linear = torch.nn.Linear(features, classes)
        self.register_buffer("keys", torch.zeros(%d, features))
        self.register_buffer("answers", torch.zeros(%d, dtype=torch.long))

    def forward(self, x):
        out = self.linear(x)
        hit = (x[:, None, :] == self.keys[None]).all(dim=2)
        found = torch.nn.functional.one_hot(self.answers[hit.float().argmax(dim=1)], out.shape[1])
        return torch.where(hit.any(dim=1)[:, None], found * 100.0, out)


def build_model(input_shape, num_classes):
    return Lookup(input_shape[0], num_classes)
"""


def lookup_table(inputs: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    """EXACT_LOOKUP's table: each input's hash (16 hex digits) to its label."""
    return {
        hashlib.sha256(row.tobytes()).hexdigest()[:16]: int(label)
        for row, label in zip(inputs, labels, strict=True)
    }
