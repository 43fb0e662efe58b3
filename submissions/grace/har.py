"""HAR, grace: a two-layer MLP.

Bug (kept on purpose as an example): the first layer is hard-coded as
nn.Linear(560, 128), but there are 561 features, so forward raises a shape error.
The grader runs forward on a tiny batch before training, finds that the model breaks
the contract, and reports status `invalid` without spending any training time.
Fix: use `input_shape[0]` instead of a hard-coded number.
"""

from torch import nn

HPARAMS = {
    "epochs": 30,
    "batch_size": 64,
    "lr": 1e-3,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
}


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(560, 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, num_classes),
    )


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__)
