"""Each mistake, graded for real on the tiny data: what the grader measures names it."""

from __future__ import annotations

from support.grading import GOOD_HAR, GradeSource

from grader.core.results import Status
from grader.publish.diagnosis import diagnose

SOFTMAX = GOOD_HAR.replace(
    "torch.nn.Linear(16, num_classes))", "torch.nn.Linear(16, num_classes), torch.nn.Softmax(dim=1))"
)
NLL_ON_LOGITS = GOOD_HAR.replace('"optimizer": "adam"}', '"optimizer": "adam", "loss": "nll"}')
STEPLR = GOOD_HAR.replace(
    '"optimizer": "adam"}',
    '"optimizer": "adam", "scheduler": "steplr", "scheduler_args": {"step_size": 1}}',
)


def test_what_training_used_is_recorded(grade_source: GradeSource) -> None:
    result = grade_source(STEPLR)
    print(result)
    assert 0


def test_softmax(grade_source: GradeSource) -> None:
    result = grade_source(SOFTMAX)
    print(result, diagnose(result, None))
    assert 0


def test_nll(grade_source: GradeSource) -> None:
    result = grade_source(NLL_ON_LOGITS)
    print(result, diagnose(result, None))
    assert 0
