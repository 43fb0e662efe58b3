"""HAR starter trained on mean squared error instead of cross-entropy.

"loss": "mse" compares softmax(outputs) with the one-hot label, so the model still returns
raw scores (logits), exactly as for cross-entropy: only the training signal changes.

Everything else is starter/har.py. Lesson: course/lessons/loss-functions.md
Run: grader check course/lessons/experiments/har_mse.py
"""

from torch import nn

HPARAMS = {
    "epochs": 25,
    "batch_size": 64,
    "lr": 0.001,
    "optimizer": "adam",
    "weight_decay": 0.0,
    "loss": "mse",
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
