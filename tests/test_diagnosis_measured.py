"""Each mistake, graded for real on the tiny data: what the grader measures names it."""

from __future__ import annotations

from support.course import HAR
from support.grading import GOOD_HAR, GradeSource
from support.mistakes import DROPOUT_AT_EVAL

from grader.core.results import Result, Status
from grader.publish.diagnosis import diagnose

SOFTMAX = GOOD_HAR.replace(
    "torch.nn.Linear(16, num_classes))",
    "torch.nn.Linear(16, num_classes), torch.nn.Softmax(dim=1))",
)
LOG_SOFTMAX_NLL = SOFTMAX.replace("Softmax(dim=1)", "LogSoftmax(dim=1)").replace(
    '"optimizer": "adam"}', '"optimizer": "adam", "loss": "nll"}'
)
NLL_ON_LOGITS = GOOD_HAR.replace('"optimizer": "adam"}', '"optimizer": "adam", "loss": "nll"}')
STEPLR = GOOD_HAR.replace(
    '"optimizer": "adam"}',
    '"optimizer": "adam", "scheduler": "steplr", "scheduler_args": {"step_size": 1}}',
)
CUSTOM_TRAIN = (
    STEPLR
    + """

def train(model, train_set, hparams):
    pass
"""
)


def graded(grade_source: GradeSource, source: str) -> Result:
    result = grade_source(source)
    assert result.status is Status.OK, result.message
    return result


def kinds(result: Result) -> list[str]:
    return [f.kind for f in diagnose(result, HAR)]


def test_a_correct_model_is_measured_as_one(grade_source: GradeSource) -> None:
    result = graded(grade_source, GOOD_HAR)
    assert (result.probability_outputs, result.self_agreement) == (0.0, 1.0)
    assert result.changed_outputs == 0.0
    assert (result.loss, result.scheduler) == ("cross_entropy", "")
    correct = graded(grade_source, LOG_SOFTMAX_NLL)  # log-probabilities are no probabilities
    assert (correct.probability_outputs, correct.loss) == (0.0, "nll")
    assert all(record["loss"] > 0 for record in correct.history)
    assert not {"softmax_outputs", "negative_loss"} & set(kinds(correct))


def test_softmax_outputs_are_measured_and_named(grade_source: GradeSource) -> None:
    result = graded(grade_source, SOFTMAX)
    assert result.probability_outputs == 1.0
    assert kinds(result) == ["softmax_outputs"]


def test_nll_on_logits_is_measured_and_named(grade_source: GradeSource) -> None:
    result = graded(grade_source, NLL_ON_LOGITS)
    assert result.loss == "nll" and result.history[-1]["loss"] < 0
    assert kinds(result) == ["negative_loss"]


def test_dropout_at_evaluation_is_measured_and_named(grade_source: GradeSource) -> None:
    result = graded(grade_source, DROPOUT_AT_EVAL)
    # Nearly every row predicted again (a row whose hidden units are all zero stays the same)
    assert result.changed_outputs is not None and result.changed_outputs > 0.9
    assert result.self_agreement is not None and result.self_agreement < 0.9
    assert kinds(result) == ["random_predictions"]
    (finding,) = diagnose(result, HAR)
    assert (
        f"and {(1 - result.self_agreement) * 100:.2f}% of the test inputs it predicted twice "
        in (finding.evidence)
    )


def test_the_scheduler_in_use_is_recorded_and_a_custom_train_records_none(
    grade_source: GradeSource,
) -> None:
    result = graded(grade_source, STEPLR)
    assert (result.scheduler, result.weight_decay) == ("steplr", 0.0)
    assert [record["lr"] for record in result.history] == [0.01, 0.001]
    custom = graded(grade_source, CUSTOM_TRAIN)  # its own loss and schedule, unseen
    assert (custom.loss, custom.scheduler, custom.weight_decay) == ("", "", None)
