"""har_steplr.py (the HAR starter with a step decay) with more dropout: p = 0.5 after the first
layer instead of 0.3. Try 0.0 too.

The step decay keeps the result from swinging from one epoch count to the next, so what
changes is down to dropout.

Lesson: course/lessons/dropout.md
Run: grader check course/lessons/experiments/har_dropout.py
"""

from torch import nn

HPARAMS = {
    "epochs": 25,
    "batch_size": 64,
    "lr": 0.001,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
    "scheduler": "steplr",
    "scheduler_args": {"step_size": 10, "gamma": 0.3},
}


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    (in_features,) = input_shape  # (561,)
    return nn.Sequential(
        nn.Linear(in_features, 128),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, num_classes),
    )


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__, "har")
