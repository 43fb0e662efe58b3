"""MNIST, erin: LeNet-5 style CNN, submitted with trained weights.

`mnist.safetensors` next to this file holds the state_dict of this model after
training with the HPARAMS below (about 62k parameters, a 250 kB file).
"""

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),  # 6 x 28 x 28
            nn.ReLU(),
            nn.MaxPool2d(2),  # 6 x 14 x 14
            nn.Conv2d(6, 16, kernel_size=5),  # 16 x 10 x 10
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16 x 5 x 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


HPARAMS = {
    "epochs": 4,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
}


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return LeNet5(input_shape[0], num_classes)


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__)
