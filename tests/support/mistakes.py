"""Submissions with a mistake the grader measures rather than reads."""

from __future__ import annotations

# F.dropout's training argument defaults to True: it keeps dropping units after model.eval().
DROPOUT_AT_EVAL = """
import torch
import torch.nn.functional as F

HPARAMS = {"epochs": 2, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}


class Net(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.hidden = torch.nn.Linear(features, 16)
        self.out = torch.nn.Linear(16, classes)

    def forward(self, x):
        return self.out(F.dropout(torch.relu(self.hidden(x)), 0.5))


def build_model(input_shape, num_classes):
    return Net(input_shape[0], num_classes)
"""
