"""HAR starter (Adam, lr 1e-3) with a step decay: the learning rate is multiplied by 0.3 after
epochs 10 and 20.

Everything else is starter/har.py. Lesson: course/lessons/gradient-descent.md
Run: grader check course/lessons/experiments/har_steplr.py
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
        nn.Dropout(0.3),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, num_classes),
    )


if __name__ == "__main__":
    from grader.cli import check_main

    check_main(__file__, "har")
