"""A small convolutional network trained the way PyTorch's well-known MNIST example trains:
Adadelta at lr 1.0, the learning rate multiplied by 0.7 after every epoch, batches of 64.

With "scheduler" in HPARAMS, none of that needs a train() of its own. The example runs 14
epochs; the course allows 10, and this file runs 2 to keep the check short.

Lesson: course/lessons/optimizers.md
Run: grader check course/lessons/experiments/mnist_adadelta.py
"""

import torch
import torch.nn.functional as F
from torch import nn

HPARAMS = {
    "epochs": 2,
    "batch_size": 64,
    "lr": 1.0,
    "optimizer": "adadelta",
    "scheduler": "steplr",
    "scheduler_args": {"step_size": 1, "gamma": 0.7},
    "loss": "nll",  # forward ends in log_softmax
}


class ConvNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3),  # 28x28 -> 26x26
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3),  # -> 24x24
            nn.ReLU(),
            nn.MaxPool2d(2),  # -> 12x12
            nn.Dropout(0.25),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * 12 * 12, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.classifier(self.features(x)), dim=1)


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return ConvNet(num_classes)


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__, "mnist")
