"""The diagnosis of a graded row: mistakes named first from what was measured, no advice that
other advice undoes, a lesson for each finding, the largest confusion in words."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from support.course import HAR, SPECS
from support.paths import REPO
from support.results import detailed, history, seed_results

from grader.core.results import Result
from grader.jobs.scoring import probability_share
from grader.jobs.seeds import combine
from grader.protocol import ChildReport
from grader.publish.diagnosis import Finding, diagnose
from grader.publish.reports import build_report, render_html, render_markdown

FIX_FIRST = (
    " Fix this first: until then the loss curve and the train-test gap describe this mistake, "
    "not your model."
)
# A row with no off-diagonal count, so no confusion sentence joins the evidence.
CLEAN = {"test": [[10 if i == j else 0 for j in range(6)] for i in range(6)]}


def only(result: Result) -> Finding:
    (finding,) = diagnose(replace(result, confusion=CLEAN), HAR)
    return finding


def kinds(result: Result) -> list[str]:
    return [f.kind for f in diagnose(result, HAR)]


def advice(result: Result) -> list[str]:
    return [a for f in diagnose(result, HAR) for a in f.advice]


# --- outputs that are already probabilities ---------------------------------------------------


def test_softmax_outputs_fed_to_cross_entropy_are_named_instead_of_overfitting() -> None:
    result = detailed(train=0.995, test=0.9453, probability_outputs=1.0, loss="cross_entropy")
    assert kinds(replace(result, probability_outputs=0.0)) == ["overfitting"]  # as it was
    finding = only(result)
    assert finding.kind == "softmax_outputs"
    assert finding.title == "The model outputs probabilities, and the loss applies softmax again"
    assert finding.evidence == (
        "On 100.00% of the inputs the grader evaluated, the model's outputs are non-negative "
        "and sum to 1: forward ends in softmax. HPARAMS['loss'] = 'cross_entropy' applies "
        "log_softmax to the outputs itself, so the probabilities are squashed by softmax a "
        "second time: every score stays between 0 and 1, the gradients are small, and the "
        "model learns slowly or stalls." + FIX_FIRST
    )
    assert finding.advice == (
        "end forward with the last linear layer (raw scores, logits) and use "
        "HPARAMS['loss'] = 'cross_entropy'",
        "or end forward with F.log_softmax(x, dim=1) and use HPARAMS['loss'] = 'nll'",
    )
    assert finding.lesson_link == (
        "course/lessons/softmax-and-likelihood.md#how-pytorch-splits-the-work"
    )


def test_softmax_outputs_with_nll_are_one_mistake_not_also_a_negative_loss() -> None:
    result = detailed(probability_outputs=1.0, loss="nll", history=history([-0.2, -0.4, -0.5]))
    finding = only(result)
    assert finding.title == "The model outputs probabilities, but nll expects log-probabilities"
    assert "minus a probability, never below -1" in finding.evidence


def test_a_custom_train_with_softmax_outputs_is_told_what_its_loss_most_likely_does() -> None:
    finding = only(detailed(probability_outputs=0.995, loss=""))
    assert "On 99.50% of the inputs" in finding.evidence
    assert "The loss in your train() most likely applies softmax itself" in finding.evidence


def test_a_few_probability_rows_are_not_a_softmax() -> None:
    assert kinds(detailed(probability_outputs=0.98)) == ["on_track"]


# --- a negative loss --------------------------------------------------------------------------


def test_nll_on_logits_is_a_negative_loss_not_a_learning_rate_to_raise_and_lower() -> None:
    # har_nll_on_logits.py as graded: the loss fell without end, accuracy near chance.
    losses = [-2.5, -1.6e3, -6.2e5, -9.1e6, -7.27e7]
    result = detailed(train=0.19, test=0.18, loss="nll", history=history(losses))
    finding = only(result)
    assert finding.kind == "negative_loss"
    assert finding.title == "The loss went negative: it does not fit the model's outputs"
    assert finding.evidence == (
        "The mean training loss fell below zero at epoch 1 and ended at -7.27e+07 (epoch 5), "
        "yet cross-entropy and the negative log-likelihood of log-probabilities are never "
        "below zero. With HPARAMS['loss'] = 'nll' on raw scores (logits), the loss is minus "
        "the right class's score, and the optimiser lowers it without end by inflating scores "
        "instead of classifying." + FIX_FIRST
    )
    assert finding.advice == (
        "keep the raw scores and use HPARAMS['loss'] = 'cross_entropy'",
        "or end forward with F.log_softmax(x, dim=1) to keep HPARAMS['loss'] = 'nll'",
    )
    assert finding.lesson_link == "course/lessons/accuracy-and-loss.md#experiment"


def test_a_negative_loss_a_custom_train_reported_names_the_usual_cause() -> None:
    finding = only(detailed(history=history([0.5, 0.1, -0.3, -0.9])))
    assert "fell below zero at epoch 3 and ended at -0.9 (epoch 4)" in finding.evidence
    assert "A loss on the wrong kind of output behaves this way" in finding.evidence


# --- predictions that change on the same input ------------------------------------------------


def test_dropout_left_on_at_evaluation_is_named_with_the_shares_that_changed() -> None:
    finding = only(detailed(changed_outputs=1.0, self_agreement=0.9875))
    assert finding.kind == "random_predictions"
    assert finding.title == "Dropout left on at evaluation: the same input gets different answers"
    assert finding.evidence == (
        "The grader predicted the same inputs twice: 100.00% of the inputs it predicted again "
        "got other outputs and 1.25% of the test inputs it predicted twice got another class. "
        "After "
        "model.eval() a model should give the same answer every time; this one still draws "
        "random numbers. The usual cause is F.dropout(x, p) without training=self.training: "
        "F.dropout's training argument defaults to True, so it keeps dropping units at "
        "evaluation (torch.rand or F.batch_norm(..., training=True) in forward do the same)."
        + FIX_FIRST
    )
    assert finding.advice == (
        "use an nn.Dropout(p) layer, which model.eval() switches off",
        "or write F.dropout(x, p, training=self.training)",
    )
    assert finding.lesson_link == "course/lessons/dropout.md#dropout-at-evaluation"


def test_outputs_that_change_are_enough_even_when_no_class_changes() -> None:
    finding = only(detailed(changed_outputs=0.25, self_agreement=1.0))
    assert "twice: 25.00% of the inputs it predicted again got other outputs. After" in (
        finding.evidence
    )
    assert kinds(detailed(changed_outputs=0.0, self_agreement=1.0)) == ["on_track"]


def test_classes_that_change_are_judged_as_the_rows_noise_note_judges_them() -> None:
    least = HAR.audit.min_agreement
    assert kinds(detailed(self_agreement=least)) == ["on_track"]
    finding = only(detailed(self_agreement=least - 0.0001))
    assert "twice: 1.01% of the test inputs it predicted twice got another class. " in (
        finding.evidence
    )


def test_several_seeds_say_which_seeds_model_disagreed_with_itself() -> None:
    finding = only(detailed(changed_outputs=0.5, seeds=[0, 1, 2]))
    assert "the same inputs twice (seed 0): 50.00%" in finding.evidence


def test_mistakes_add_up_and_leave_out_advice_they_make_meaningless() -> None:
    result = detailed(train=0.999, test=0.9, self_agreement=0.9, probability_outputs=1.0)
    assert kinds(result) == ["softmax_outputs", "random_predictions"]


# --- a scheduler in use -----------------------------------------------------------------------

SWINGS = [0.80, 0.90, 0.95, 0.97, 0.93, 0.975, 0.94, 0.98]


def swinging(rates: list[float], scheduler: str = "") -> Result:
    records = history([0.5] * 8, SWINGS)
    for record, rate in zip(records, rates, strict=True):
        record["lr"] = rate
    return replace(detailed(history=records), scheduler=scheduler, confusion=CLEAN)


def test_a_model_with_a_scheduler_is_not_told_to_add_one() -> None:
    (finding,) = diagnose(swinging([1e-3] * 4 + [1e-4] * 4, "steplr"), HAR)
    assert finding.kind == "unstable"
    assert finding.advice[0] == (
        "your learning rate already decays with your HPARAMS['scheduler'] = 'steplr' (it went "
        "from 0.001 to 0.0001): decay it sooner or further (HPARAMS['scheduler_args']), so the "
        "last epochs take small steps"
    )
    assert "With a constant learning rate" not in finding.evidence


def test_a_scheduler_that_never_changed_the_rate_is_told_so() -> None:
    (finding,) = diagnose(swinging([1e-3] * 8, "steplr"), HAR)
    assert finding.advice[0] == (
        "your HPARAMS['scheduler'] = 'steplr' left the learning rate at 0.001 for all 8 "
        "epochs: set HPARAMS['scheduler_args'] so it decays within the run"
    )


def test_a_custom_train_whose_rate_changes_already_has_a_schedule() -> None:
    (finding,) = diagnose(swinging([1e-3 * 0.9**i for i in range(8)]), HAR)
    assert finding.advice[0].startswith(
        "your learning rate already decays with your schedule (it went from 0.001 to 0.000478)"
    )


def test_without_a_schedule_the_advice_is_to_add_one() -> None:
    (finding,) = diagnose(swinging([1e-3] * 8), HAR)
    assert "HPARAMS['scheduler'] = 'steplr'" in finding.advice[0]
    assert "With a constant learning rate" in finding.evidence


def test_on_track_with_a_scheduler_suggests_no_schedule() -> None:
    plain = detailed(train=0.97, test=0.962, confusion=CLEAN)
    (finding,) = diagnose(plain, HAR)
    assert "a learning-rate schedule" in finding.advice[0]
    (scheduled,) = diagnose(replace(plain, scheduler="cosineannealinglr"), HAR)
    assert scheduled.advice == (
        "small changes may close the last points: a slightly larger model with dropout",
    )


# --- no advice undoes other advice ------------------------------------------------------------

OPPOSITE_WORDS = [
    ("lower the learning rate", "raise the learning rate"),
    ("decay the learning rate", "raise the learning rate"),
    ("fewer epochs", "more epochs"),
    ("fewer parameters", "bigger model"),
]
HISTORIES = {
    "none": [],
    "rising": history([1.0, 0.6, 0.9, 1.4]),
    "blown up": history([2.0, 1.5, None, None]),
    "negative": history([0.1, -5.0, -80.0]),
    "swinging": history([0.5] * 8, SWINGS),
    "smooth": history([1.2, 0.8, 0.6, 0.5]),
}


@pytest.mark.parametrize("name", HISTORIES)
def test_no_diagnosis_gives_opposite_advice(name: str) -> None:
    for train, test, scheduler, probabilities, changed in itertools.product(
        (0.5, 0.9, 0.95, 0.99), (0.4, 0.85, 0.9, 0.97), ("", "steplr"), (0.0, 1.0), (0.0, 0.5)
    ):
        result = detailed(
            train=train,
            test=test,
            history=HISTORIES[name],
            scheduler=scheduler,
            probability_outputs=probabilities,
            changed_outputs=changed,
        )
        given = " | ".join(advice(result))
        for one, other in OPPOSITE_WORDS:
            assert not (one in given and other in given), (name, train, test, given)


def test_a_model_with_weight_decay_is_told_to_raise_it_not_to_add_it() -> None:
    gap = detailed(train=0.995, test=0.9653, confusion=CLEAN)
    (finding,) = diagnose(gap, HAR)
    assert finding.advice[1] == "add weight decay (HPARAMS['weight_decay'], e.g. 1e-4 to 1e-2)"
    (decayed,) = diagnose(replace(gap, weight_decay=0.001), HAR)
    assert decayed.advice[1] == (
        "raise the weight decay your HPARAMS['weight_decay'] = 0.001 sets (e.g. to 0.01)"
    )


def test_underfitting_keeps_its_advice_and_the_gap_keeps_what_does_not_undo_it() -> None:
    result = detailed(train=0.93, test=0.88, history=history([1.0, 0.6, 0.9, 1.4]))
    findings = {f.kind: f.advice for f in diagnose(result, HAR)}
    assert findings["learning_rate_too_high"][0].startswith("lower the learning rate")
    assert findings["underfitting"] == (
        "train for more epochs",
        "use a bigger model: wider or more layers",
    )
    assert findings["overfitting"] == (
        "add dropout (or raise its rate)",
        "add weight decay (HPARAMS['weight_decay'], e.g. 1e-4 to 1e-2)",
    )


# --- lessons ----------------------------------------------------------------------------------


def slugs(page: Path) -> set[str]:
    """GitHub's anchors for a Markdown page's headings."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


EVERY_FINDING = [
    detailed(probability_outputs=1.0),
    detailed(history=history([0.1, -5.0])),
    detailed(changed_outputs=0.5),
    detailed(train=0.995, test=0.9653),
    detailed(train=0.90, test=0.895),
    detailed(history=history([2.0, 1.5, None])),
    detailed(history=history([0.5] * 8, SWINGS)),
]


def test_every_finding_but_on_track_links_a_lesson_that_exists() -> None:
    findings = [f for r in EVERY_FINDING for f in diagnose(r, HAR)]
    assert {f.kind for f in findings} == {
        "softmax_outputs",
        "negative_loss",
        "random_predictions",
        "overfitting",
        "underfitting",
        "learning_rate_too_high",
        "unstable",
    }
    for finding in findings:
        page, _, anchor = finding.lesson_link.partition("#")
        assert (REPO / page).is_file(), finding.lesson_link
        assert not anchor or anchor in slugs(REPO / page), finding.lesson_link


def test_reports_link_the_lesson() -> None:
    report = build_report(detailed(changed_outputs=0.5), HAR, pictures=False)
    markdown = render_markdown(report)
    assert (
        "  The lesson: [course/lessons/dropout\\.md\\#dropout-at-evaluation]"
        "(course/lessons/dropout\\.md\\#dropout-at-evaluation) "
        "(in the course's folder)"
    ) in markdown
    html = render_html(report)
    assert (
        '<a href="course/lessons/dropout.md#dropout-at-evaluation">'
        "course/lessons/dropout.md#dropout-at-evaluation</a>"
    ) in html


# --- the largest confusion --------------------------------------------------------------------


def confused(count: int) -> Result:
    matrix = [[480 if i == j else 0 for j in range(6)] for i in range(6)]
    matrix[3][4] = count  # sitting predicted as standing
    matrix[4][3] = 7
    return detailed(confusion={"train": matrix, "test": matrix})


def test_the_largest_confusion_is_named_in_words() -> None:
    finding = diagnose(confused(52), HAR)[-1]
    assert finding.evidence.endswith(
        " The most frequent mistake on the test set: 52 sitting windows predicted as standing "
        "(of 532)."
    )


def test_the_confusion_of_several_seeds_says_it_counts_them_all() -> None:
    row = combine(seed_results(), HAR)
    evidence = diagnose(row, HAR)[-1].evidence
    said = evidence.split(" The most frequent mistake on the test set")[1]
    matrix = row.confusion["test"]
    count = max(matrix[i][j] for i in range(6) for j in range(6) if i != j)
    assert said.startswith(f", counted over seeds 0, 1, 2: {count} ")
    assert count > max(
        r.confusion["test"][i][j]
        for r in seed_results()
        for i in range(6)
        for j in range(6)
        if i != j
    )  # summed, not one seed's


def test_mnist_confusions_are_images_of_digits() -> None:
    matrix = [[90 if i == j else 0 for j in range(10)] for i in range(10)]
    matrix[4][9] = 12
    result = replace(detailed(confusion={"test": matrix}), assignment="mnist")
    assert diagnose(result, SPECS["mnist"])[-1].evidence.endswith(
        " The most frequent mistake on the test set: 12 images of the digit 4 predicted as 9 "
        "(of 102)."
    )


def test_a_class_never_predicted_right_is_all_of_them() -> None:
    matrix = [[10 if i == j else 0 for j in range(6)] for i in range(6)]
    matrix[5] = [0, 0, 0, 0, 424, 0]
    assert diagnose(detailed(confusion={"test": matrix}), HAR)[-1].evidence.endswith(
        " 424 laying windows predicted as standing (all of them)."
    )


def test_other_datasets_name_the_class() -> None:
    spec = replace(HAR, assignment=replace(HAR.assignment, dataset="other", class_names=()))
    assert diagnose(confused(52), spec)[-1].evidence.endswith(
        " 52 examples of class 3 predicted as 4 (of 532)."
    )


def test_a_perfect_matrix_names_no_confusion() -> None:
    assert "most frequent mistake" not in diagnose(detailed(confusion=CLEAN), HAR)[-1].evidence


# --- the child's word -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["../etc", "A" * 5, "x" * 41, 5, None, "nll\n"])
def test_a_loss_name_a_child_should_not_have_written_is_dropped(value: object) -> None:
    report = ChildReport.parse({"status": "ok", "loss": value, "scheduler": value})
    assert report is not None and (report.loss, report.scheduler) == ("", "")


def test_a_loss_name_the_grader_knows_is_kept() -> None:
    report = ChildReport.parse({"status": "ok", "loss": "cross_entropy", "scheduler": "steplr"})
    assert report is not None and (report.loss, report.scheduler) == ("cross_entropy", "steplr")


@pytest.mark.parametrize(
    ("value", "kept"),
    [(0.25, 0.25), (1, 1.0), (1.5, None), (-0.1, None), ("0.5", None), (True, None)],
)
def test_a_changed_share_is_a_fraction_or_nothing(value: object, kept: float | None) -> None:
    report = ChildReport.parse({"status": "ok", "changed_outputs": value})
    assert report is not None and report.changed_outputs == kept


def test_the_share_of_outputs_that_are_probabilities() -> None:
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], dtype=np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert probability_share(probabilities) == 1.0
    assert probability_share(np.log(probabilities)) == 0.0  # log-probabilities
    assert probability_share(logits) == 0.0
    assert probability_share(np.vstack([probabilities, logits])) == 0.5
    assert probability_share(np.array([[0.3, 0.3, 0.3]], dtype=np.float32)) == 0.0
    assert probability_share(np.empty((0, 3), dtype=np.float32)) == 0.0
