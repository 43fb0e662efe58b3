"""HAR starter given up to 100 epochs, with early stopping.

The grader holds out 10% of the training windows (drawn with the grading seed), measures
accuracy on them after every epoch, stops once 5 epochs in a row have not beaten the best, and
keeps the weights of the best epoch.

Everything else is starter/har.py. Lesson: course/lessons/overfitting.md
Run: grader check course/lessons/experiments/har_early_stopping.py
"""

from torch import nn

HPARAMS = {
    "epochs": 100,
    "batch_size": 64,
    "lr": 0.001,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "cross_entropy",
    "validation_split": 0.1,
    "early_stopping": 5,
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
