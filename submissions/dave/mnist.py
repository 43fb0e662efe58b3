"""MNIST, dave: a wider MLP.

Bug (kept on purpose as an example): the input is (N, 1, 28, 28) but there is no
nn.Flatten(), so the first nn.Linear(784, ...) sees a last dimension of 28 and
forward raises "mat1 and mat2 shapes cannot be multiplied". The grader reports
this submission with status `error`.
"""

from torch import nn

HPARAMS = {
    "epochs": 5,
    "batch_size": 128,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
}


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(28 * 28, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__)
