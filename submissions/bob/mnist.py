"""MNIST, bob: a small CNN (two conv blocks, about 9k parameters)."""

import torch
from torch import nn

HPARAMS = {
    "epochs": 3,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
}


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, kernel_size=3, padding=1),  # 8 x 28 x 28
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8 x 14 x 14
            nn.Conv2d(8, 16, kernel_size=3, padding=1),  # 16 x 14 x 14
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16 x 7 x 7
        )
        self.classifier = nn.Linear(16 * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return SmallCNN(input_shape[0], num_classes)


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__)
