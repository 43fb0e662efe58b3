"""MNIST, dave: a wider MLP.

Bug (kept on purpose as an example): a typo in build_model, `num_class` instead of
`num_classes`, raises NameError as soon as the grader builds the model. The grader
reports this submission with status `error` and points at the line.
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
        nn.Flatten(),
        nn.Linear(28 * 28, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, num_class),  # noqa: F821  (the typo is the point of this example)
    )


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__)
