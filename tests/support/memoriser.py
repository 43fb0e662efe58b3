"""The robust MNIST memoriser, built as a student would build it from the public test set.

Its source carries each test image's 7x7 grid of 4x4 block means with its label; its train()
adds its own training rows to the table before a quick honest epoch. At evaluation every input
near a stored one (imperceptible changes stay near) gets the stored label, anything else the
model's own guess. Only rows it never saw, a private hold-out, show what it learned.
"""

from __future__ import annotations

import base64
import zlib

import numpy as np

SOURCE = """
import base64, zlib

import numpy as np
import torch

HPARAMS = {"epochs": 1, "batch_size": 256, "lr": 0.5, "optimizer": "sgd"}
_TABLE = np.frombuffer(zlib.decompress(base64.b64decode("%s")), np.uint8).reshape(-1, 50)


def _blocks(x):
    return torch.nn.functional.avg_pool2d(x.reshape(-1, 1, 28, 28), 4).flatten(1)


class Memoriser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(784, 10)
        self.register_buffer("keys", torch.tensor(_TABLE[:, :49] / 255.0, dtype=torch.float32))
        self.register_buffer("answers", torch.tensor(_TABLE[:, 49], dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args):
        # The saved table also holds the training rows: take its size before loading it.
        self.keys = torch.empty_like(state_dict[prefix + "keys"])
        self.answers = torch.empty_like(state_dict[prefix + "answers"])
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x):
        out = self.linear(x.flatten(1))
        if self.training:
            return out
        distance, nearest = torch.cdist(_blocks(x), self.keys).min(dim=1)
        found = torch.nn.functional.one_hot(self.answers[nearest], 10) * 100.0
        return torch.where((distance < 0.02)[:, None], found, out)


def build_model(input_shape, num_classes):
    return Memoriser()


def train(model, train_set, hparams):
    inputs, labels = train_set.tensors
    optimizer = torch.optim.SGD(model.parameters(), lr=hparams["lr"])
    model.train()
    for start in range(0, len(labels), hparams["batch_size"]):
        batch = slice(start, start + hparams["batch_size"])
        loss = torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        model.keys = torch.cat([model.keys, _blocks(inputs)])
        model.answers = torch.cat([model.answers, labels])
"""


def robust_memoriser(test_inputs: np.ndarray, test_labels: np.ndarray) -> str:
    """The submission's source for these public test images (uint8, N x 1 x 28 x 28)."""
    means = test_inputs.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49)
    table = np.concatenate([np.rint(means), test_labels[:, None]], axis=1).astype(np.uint8)
    packed = base64.b64encode(zlib.compress(table.tobytes(), 9)).decode("ascii")
    return SOURCE % packed
