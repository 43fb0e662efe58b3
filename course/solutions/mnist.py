"""Reference solution, MNIST: a small two-block CNN trained for 3 epochs.

Two 3x3 conv layers (16 and 32 channels), each followed by ReLU and 2x2 max-pooling,
then one linear layer: about 20k parameters. Convolutions share weights across the
image, so the model generalises well (train and test accuracy stay within a few tenths
of a percent) while being far smaller than an MLP of similar accuracy.
"""

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


class CNN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=3, padding=1),  # 16 x 28 x 28
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16 x 14 x 14
            nn.Conv2d(16, 32, kernel_size=3, padding=1),  # 32 x 14 x 14
            nn.ReLU(),
            nn.MaxPool2d(2),  # 32 x 7 x 7
        )
        self.classifier = nn.Linear(32 * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return CNN(input_shape[0], num_classes)


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__, "mnist")
