"""MNIST, carol: a tiny MLP with plain SGD.

Kept it small and quick to train. (Plain SGD with no momentum and only two
epochs turns out to be too little training for this model.)
"""

from torch import nn

HPARAMS = {
    "epochs": 2,
    "batch_size": 64,
    "lr": 0.01,
    "optimizer": "sgd",
    "momentum": 0.0,
    "weight_decay": 0.0,
    "loss": "cross_entropy",
}


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 32),
        nn.ReLU(),
        nn.Linear(32, num_classes),
    )


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__)
