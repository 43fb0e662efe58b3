"""HAR starter without its BatchNorm1d layer.

Everything else is starter/har.py. Lesson: course/lessons/batch-normalization.md
Run: grader check course/lessons/experiments/har_no_batchnorm.py
"""

from torch import nn

HPARAMS = {
    "epochs": 25,
    "batch_size": 64,
    "lr": 0.001,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
}


def build_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    (in_features,) = input_shape  # (561,)
    return nn.Sequential(
        nn.Linear(in_features, 128),
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
