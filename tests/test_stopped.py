"""A job stopped at its limit says where its time went, and its advice fits that place: a hang
in build_model is not "train for fewer epochs". The child's progress file says where it was;
student code can rewrite it, so it only ever chooses words and advice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.grading import GOOD_HAR, GradeSource

from grader.core.results import Result, Stage, Status
from grader.jobs.stopped import Stopped, stopped_in
from grader.protocol import PROGRESS, Progress
from grader.publish.diagnosis import diagnose

SLOW_BUILD = """
import torch

HPARAMS = {"epochs": 2, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}


def build_model(input_shape, num_classes):
    while True:
        pass
"""

SLOW_EPOCHS = (
    GOOD_HAR
    + """
import time

HPARAMS = {"epochs": 5, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}


def train(model, train_set, hparams, report_epoch):
    for epoch in range(hparams["epochs"]):
        report_epoch(loss=1.0)
        time.sleep(2.5 if epoch < 2 else 600)
"""
)


def test_a_hang_in_build_model_is_named_with_advice_for_it(grade_source: GradeSource) -> None:
    result = grade_source(SLOW_BUILD, timeout_seconds=8)
    assert (result.status, result.stage) == ("timeout", "building the model")
    assert result.message == (
        "train took longer than 8 s while building the model (build_model had not returned)"
    )
    (finding,) = diagnose(result, None)
    assert finding.advice == (
        "build_model never returned: look for a loop that does not end in build_model or in "
        "your model's __init__",
    )


def test_a_timeout_in_training_counts_the_epochs_done(grade_source: GradeSource) -> None:
    result = grade_source(SLOW_EPOCHS, timeout_seconds=12)
    assert (result.status, result.stage) == ("timeout", "training")
    assert result.message == (
        "train took longer than 12 s while training, after 3 of 5 epochs "
        "(the budget allows about 2.4 s an epoch)"
    )
    (finding,) = diagnose(result, None)
    assert "fewer epochs" in finding.advice[0]


def _written(tmp_path: Path, text: str | bytes) -> Path:
    data = text.encode() if isinstance(text, str) else text
    (tmp_path / PROGRESS).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize(
    "forged",
    [
        "not json",
        '{"stage": "pwned"}',
        '{"stage": ["training"]}',
        "[" * 100_000,
        b"\xff" * 10,
        '{"stage": "training", "pad": "' + "x" * 2_000 + '"}',  # over PROGRESS_BYTES
    ],
)
def test_a_forged_progress_file_says_nothing(tmp_path: Path, forged: str | bytes) -> None:
    assert stopped_in(_written(tmp_path, forged), 600) == Stopped("", "")


def test_forged_epoch_counts_are_dropped(tmp_path: Path) -> None:
    text = '{"stage": "training", "epochs_done": -5, "epochs_asked": true}'
    assert stopped_in(_written(tmp_path, text), 600).words == " while training"


def test_a_progress_file_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(Progress(Stage.BUILD).to_json())
    (tmp_path / PROGRESS).symlink_to(target)
    assert stopped_in(tmp_path) == Stopped("", "")


def test_no_progress_file_leaves_the_message_as_it_was(tmp_path: Path) -> None:
    assert stopped_in(tmp_path) == Stopped("", "")
    assert not os.listdir(tmp_path)


def test_a_training_timeout_keeps_the_training_advice() -> None:
    row = Result("s", "har", Status.TIMEOUT, "train took longer than 8 s", stage="training")
    (finding,) = diagnose(row, None)
    assert finding.advice == ("train for fewer epochs, use a smaller model or a larger batch",)
