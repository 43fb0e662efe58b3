"""Grading on tiny data: its sizes, its environment, a good submission, grade_source's type."""

from __future__ import annotations

from collections.abc import Callable

from grader.core.results import Environment, Result

# Tests grade on the CPU: the environment every tiny-data result is recorded under.
TEST_ENVIRONMENT = Environment(torch_version="test", device="cpu")
TINY_TRAIN, TINY_TEST = 120, 60

# A correct, fast submission that the failure tests start from.
GOOD_HAR = """
import torch

HPARAMS = {"epochs": 2, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}


def build_model(input_shape, num_classes):
    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, num_classes))
"""

# What the grade_source fixture returns: a submission's source in, its graded row out.
GradeSource = Callable[..., Result]
