"""MNIST starter network with batches of 256 instead of 10 (try 64 as well).

The network returns logits and trains with "cross_entropy", which grades exactly like the
starter's log_softmax with "nll" (see mnist_logits.py); only the batch size differs from the
starter.

Lesson: course/lessons/batch-size.md
Run: grader check course/lessons/experiments/mnist_batch.py
"""

import torch
import torch.nn.functional as F
from torch import nn

HPARAMS = {
    "epochs": 3,
    "batch_size": 256,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
}


class Net(nn.Module):
    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 64)
        self.fc4 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return self.fc4(x)  # no log_softmax: cross_entropy applies it


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    in_features = 1
    for dim in input_shape:
        in_features *= dim
    return Net(in_features, num_classes)


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__, "mnist")
