"""A report for every row: targets with exact margins, the diagnosis in plain words, real
pictures embedded in one HTML file (and beside its Markdown twin), failures with their log tail
and the command that reproduces them."""

from __future__ import annotations

import base64
import html
import io
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from support.course import HAR, SPECS
from support.results import detailed, history, seed_results

from grader.api.single import Checked
from grader.cli.output import print_check
from grader.core.results import Mode, Result, Status
from grader.core.review import load_reviewed
from grader.core.submission import StudentMeta
from grader.jobs.seeds import combine
from grader.publish import report_plots
from grader.publish.diagnosis import diagnose
from grader.publish.reports import build_report, report_folder, write_report, write_reports

ACTIVITIES = ["walking", "upstairs", "downstairs", "sitting", "standing", "laying"]


def kinds(result: Result) -> list[str]:
    return [f.kind for f in diagnose(result, HAR)]


# --- the diagnosis ----------------------------------------------------------------------------


def test_a_large_gap_is_overfitting() -> None:
    (finding,) = diagnose(detailed(train=0.995, test=0.9653), HAR)
    assert finding.kind == "overfitting"
    assert "a gap of 2.97 points, where the targets want less than 2" in finding.evidence
    assert any("dropout" in a for a in finding.advice)
    assert any("weight decay" in a for a in finding.advice)
    assert any("fewer parameters" in a for a in finding.advice)
    assert any("fewer epochs" in a for a in finding.advice)


def test_low_training_accuracy_is_underfitting() -> None:
    (finding,) = diagnose(detailed(train=0.90, test=0.895), HAR)
    assert finding.kind == "underfitting"
    assert "only 90.00%, below the 96.00%" in finding.evidence
    assert [a.split()[0] for a in finding.advice] == ["train", "raise", "use"]


def test_a_loss_that_stops_being_finite_means_the_learning_rate_is_too_high() -> None:
    result = detailed(history=history([2.0, 1.5, None, None]))
    assert kinds(result) == ["learning_rate_too_high"]
    (finding,) = diagnose(result, HAR)
    assert "at epoch 3" in finding.evidence and "learning rate" in finding.evidence
    assert any("lower the learning rate" in a for a in finding.advice)


def test_a_rising_loss_means_the_learning_rate_is_too_high() -> None:
    result = detailed(history=history([1.0, 0.6, 0.9, 1.4]))
    assert kinds(result) == ["learning_rate_too_high"]
    assert "ended at 1.4" in diagnose(result, HAR)[0].evidence


def test_accuracy_swinging_between_epochs_suggests_decay_or_a_larger_batch() -> None:
    swings = [0.80, 0.90, 0.95, 0.97, 0.93, 0.975, 0.94, 0.98]
    result = detailed(history=history([0.5] * 8, swings))
    assert kinds(result) == ["unstable"]
    (finding,) = diagnose(result, HAR)
    assert "fell by 4.0 points in one epoch (at epoch 5)" in finding.evidence
    assert any("HPARAMS['scheduler']" in a for a in finding.advice)
    assert any("larger batch" in a for a in finding.advice)


def test_validation_accuracy_is_read_first_for_swings() -> None:
    records = history([0.5] * 6, [0.9, 0.91, 0.92, 0.93, 0.94, 0.95])
    for record, val in zip(records, [0.9, 0.92, 0.95, 0.90, 0.95, 0.91], strict=True):
        record["val_accuracy"] = val
    (finding,) = diagnose(detailed(history=records), HAR)
    assert "validation accuracy fell by 5.0 points" in finding.evidence


def test_a_smooth_run_that_meets_every_target_is_on_track() -> None:
    (finding,) = diagnose(detailed(train=0.985, test=0.978), HAR)
    assert (finding.kind, finding.title) == ("on_track", "Every target met")


def test_problems_add_up() -> None:
    result = detailed(train=0.93, test=0.88, history=history([1.0, 0.6, 0.9, 1.4]))
    assert kinds(result) == ["learning_rate_too_high", "overfitting", "underfitting"]


def test_a_custom_train_without_history_is_judged_on_the_grader_numbers_alone() -> None:
    assert kinds(detailed(history=[])) == ["on_track"]
    assert kinds(detailed(train=0.995, history=[])) == ["overfitting"]


@pytest.mark.parametrize(
    ("status", "message", "kind", "advice"),
    [
        ("invalid", "train: check forward_output_shape failed: model returned (2, 5)", "invalid",
         "instead of hard-coded sizes"),
        ("invalid", "the model produced NaN or infinite outputs", "invalid", "learning rate"),
        ("error", "train: NameError: name 'x' (line 3 of the submission)", "error",
         "run the command below"),
        ("timeout", "train took longer than 600 s", "timeout", "fewer epochs"),
        ("memory", "train used more than its 4096 MB of memory", "memory", "smaller batch"),
        ("crashed", "train was killed by SIGSEGV before reporting a result", "crashed",
         "segfault"),
        ("sandbox", "train was stopped before the submission ran", "sandbox", "nothing to fix"),
    ],
)  # fmt: skip
def test_failed_rows_say_what_failed_and_what_to_do(
    status: str, message: str, kind: str, advice: str
) -> None:
    result = Result(student="bob", assignment="har", status=status, message=message)
    (finding,) = diagnose(result, HAR)
    assert finding.kind == kind
    assert message in finding.evidence
    assert any(advice in a for a in finding.advice)


# --- the report -------------------------------------------------------------------------------


def images(html: str) -> list[np.ndarray]:
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [matplotlib.image.imread(io.BytesIO(base64.b64decode(b)), format="png") for b in found]


def test_a_graded_report_has_targets_margins_diagnosis_pictures_and_facts(tmp_path: Path) -> None:
    result = detailed(train=0.9874, test=0.9653)
    paths = write_report(build_report(result, HAR), tmp_path)
    assert sorted(p.name for p in paths) == [
        "har-classes.png", "har-training.png", "har.html", "har.md"]  # fmt: skip
    html = (tmp_path / "har.html").read_text()
    md = (tmp_path / "har.md").read_text()
    for text in (html, md):
        assert "96.53%" in text and "98.74%" in text and "+2.21 points" in text
        assert "+0.53 points" in text  # target A's accuracy margin
        assert "-0.21 points" in text  # target A's gap margin: missed by this much
        assert "-0.97 points" in text  # target B's margin
        assert "Overfitting" in text
        assert "grader check har.py --assignment har" in text
        for name in ACTIVITIES:
            assert name in text
        for fact in ("144,006", "12.3 s", "retrain", "cpu", "2.5.0", "0.2.0"):
            assert fact in text
    training, classes = images(html)
    for picture in (training, classes):
        assert picture.shape[0] > 300 and picture.shape[1] > 800
        assert picture[..., :3].std() > 0.05  # drawn on, not blank
    assert "![Training loss and accuracy per epoch](har-training.png)" in md
    assert (tmp_path / "har-training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_reports_name_the_digits(tmp_path: Path) -> None:
    confusion = np.eye(10, dtype=int).tolist()
    result = replace(
        detailed(),
        assignment="mnist",
        confusion={"train": confusion, "test": confusion},
        class_accuracy={"train": [1.0] * 10, "test": [1.0] * 10},
    )
    report = build_report(result, SPECS["mnist"])
    assert report.class_names == [str(d) for d in range(10)]
    write_report(report, tmp_path)
    md = (tmp_path / "mnist.md").read_text()
    assert all(f"| {d} | 100.00% | 100.00% |" in md for d in range(10))


def test_a_failed_row_gets_a_report_with_its_log_and_the_command(tmp_path: Path) -> None:
    log = "Traceback (most recent call last):\n" + "".join(f"line {i}\n" for i in range(50))
    result = Result(
        student="dave",
        assignment="har",
        status="error",
        message="train: NameError: name 'num_class' is not defined (line 27 of the submission)",
        log_tail=log + "<script>alert(1)</script>\n```\n",
        mode=Mode.LOAD,
        checks=[{"name": "defines_build_model", "passed": True}],
    )
    write_report(build_report(result, HAR), tmp_path)
    html = (tmp_path / "har.html").read_text()
    md = (tmp_path / "har.md").read_text()
    for text in (html, md):
        assert "NameError: name" in text and "num" in text
        assert "grader check har.py --assignment har --mode load" in text
        assert "line 49" in text and "line 10" not in text  # the last 30 lines
        assert "defines" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "\n````text\n" in md  # a fence longer than the log's own ```
    assert images(html) == []
    assert not (tmp_path / "har-training.png").exists()


def test_a_report_without_history_explains_how_to_get_curves(tmp_path: Path) -> None:
    write_report(build_report(detailed(history=[]), HAR), tmp_path)
    html = (tmp_path / "har.html").read_text()
    assert "report_epoch" in html
    assert len(images(html)) == 1  # the class picture only


def test_a_late_submission_says_so(tmp_path: Path) -> None:
    report = build_report(detailed(), HAR, StudentMeta(late=True))
    write_report(report, tmp_path)
    assert '<span class="badge late">late</span>' in (tmp_path / "har.html").read_text()


def test_student_text_in_a_report_is_inert(tmp_path: Path) -> None:
    result = detailed(checks=[{"name": "<b>x</b>|[a](b)", "passed": False}])
    write_report(build_report(result, HAR), tmp_path)
    assert "<b>x</b>" not in (tmp_path / "har.html").read_text()
    assert "\\|\\[a\\](b)" in (tmp_path / "har.md").read_text()


def test_same_result_same_report(tmp_path: Path) -> None:
    write_report(build_report(detailed(), HAR), tmp_path / "a")
    write_report(build_report(detailed(), HAR), tmp_path / "b")
    for name in ("har.html", "har.md", "har-training.png", "har-classes.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("student", ["..", "a b", "../../etc", "x" * 300, "-rf"])
def test_a_rejected_folder_name_cannot_steer_the_report_path(tmp_path: Path, student: str) -> None:
    folder = report_folder(tmp_path, student)
    assert folder.parent == tmp_path / "reports"
    assert re.fullmatch(r"rejected-[0-9a-f]{12}", folder.name)
    assert report_folder(tmp_path, "alice") == tmp_path / "reports" / "alice"


def test_a_failed_attempt_leaves_no_stale_picture_beside_its_markdown(tmp_path: Path) -> None:
    write_report(build_report(detailed(), HAR), tmp_path)
    assert (tmp_path / "har-training.png").exists()
    failed = Result(student="alice", assignment="har", status="error", message="boom")
    write_report(build_report(failed, HAR), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["har.html", "har.md"]


# --- several seeds: which, each one's figures, and tables that agree with the headline ---------


def written(tmp_path: Path, result: Result, **options: Any) -> tuple[str, str]:
    """The report's HTML and Markdown, as written for this row."""
    write_report(build_report(result, HAR, **options), tmp_path)
    return (tmp_path / f"{result.assignment}.html").read_text(), (
        tmp_path / f"{result.assignment}.md"
    ).read_text()


def test_a_report_of_several_seeds_names_them_and_shows_each_seed(tmp_path: Path) -> None:
    html_text, md = written(tmp_path, combine(seed_results(), HAR))
    assert (
        "Graded on seeds 0, 1, 2; their mean: test accuracy **96.11%** ± 0.35 points, train "
        "accuracy 98.14%: a train \N{MINUS SIGN} test gap of **+2.03 points**. The spread (±) "
        "is the standard deviation of the seeds' test accuracies. The targets are judged on "
        "the means." in md
    )
    assert (
        "Graded on seeds 0, 1, 2; their mean: test accuracy <strong>96.11%</strong> ± 0.35 "
        "points, train accuracy 98.14%" in html_text
    )
    assert "| 0 | 96.48% | 98.28% | +1.79 points | 14.0 s |" in md
    assert "| 1 | 95.78% | 98.01% | +2.23 points | 15.0 s |" in md
    assert "| **mean** | 96.11% ± 0.35 points | 98.14% | +2.03 points | 45.0 s in all |" in md
    assert (
        '<tr><td>0</td><td class="num">96.48%</td><td class="num">98.28%</td>'
        '<td class="num">+1.79 points</td><td class="num">14.0 s</td></tr>' in html_text
    )
    assert "| seeds | 0, 1, 2 (the accuracies are their mean) |" in md
    assert "<dt>seeds</dt><dd>0, 1, 2 (the accuracies are their mean)</dd>" in html_text
    assert "| epochs | 10 (seed 0: weights kept from epoch 8) |" in md
    assert "| training time | 45.0 s (3 seeds in all) |" in md
    curves = "These are seed 0's curves and figures, the first of the seeds 0, 1, 2; the "
    assert curves in md and curves in html.unescape(html_text)
    assert "| seed | 0 |" not in md and "<dt>seed</dt>" not in html_text
    assert "hold-out" not in md  # no column for a figure no seed has


def test_the_class_tables_of_several_seeds_agree_with_the_headline(tmp_path: Path) -> None:
    row = combine(seed_results(), HAR)
    test = np.asarray(row.confusion["test"])
    assert np.trace(test) / test.sum() == pytest.approx(row.test_accuracy, rel=1e-12)
    html_text, md = written(tmp_path, row)
    said = (
        "Counted over seeds 0, 1, 2: each seed's model predicted every example once, so each "
        "example is counted 3 times, and the diagonal's share of the test counts, 96.11%, is "
        "the mean test accuracy above."
    )
    assert said in md and said in html.unescape(html_text)
    # Sitting: 375 windows a seed, 48 + 58 + 55 taken for standing: 964 of 1125 right.
    assert "| sitting | 92.83% | 85.69% |" in md
    assert '<tr><td>sitting</td><td class="num">92.83%</td><td class="num">85.69%</td></tr>' in (
        html_text
    )


def test_a_row_stored_before_seeds_were_summed_says_its_tables_are_one_seeds(
    tmp_path: Path,
) -> None:
    old = replace(combine(seed_results(), HAR), per_seed=[])
    old = replace(old, confusion=seed_results()[0].confusion)
    html_text, md = written(tmp_path, old)
    said = (
        "These tables are seed 0's alone (this attempt was graded before the seeds' tables "
        "were summed), so they differ from the mean above."
    )
    assert said in md and said in html.unescape(html_text)
    assert "Each seed's own figures were not kept for this attempt" in md


def test_one_seed_says_seed_and_shows_no_seed_table(tmp_path: Path) -> None:
    html_text, md = written(tmp_path, combine(seed_results((2,)), HAR))
    assert "| seed | 2 |" in md and "<dt>seed</dt><dd>2</dd>" in html_text
    assert "Seed by seed" not in md + html_text and "their mean" not in md + html_text
    assert "Counted over" not in md


def drawn(monkeypatch: pytest.MonkeyPatch, draw: Any, *args: Any) -> list[str]:
    """The titles and legend labels of a report picture, as drawn."""
    figures: list[Any] = []
    monkeypatch.setattr(report_plots, "png_bytes", lambda figure, **_: figures.append(figure))
    draw(*args)
    (figure,) = figures
    texts = [axis.get_title() for axis in figure.axes]
    for axis in figure.axes:
        legend = axis.get_legend()
        texts += [t.get_text() for t in legend.get_texts()] if legend else []
    return texts


def test_the_pictures_of_several_seeds_say_which_seeds_they_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = combine(seed_results(), HAR)
    training = drawn(monkeypatch, report_plots.training_png, row)
    assert training[:2] == ["Seed 0: training loss per epoch", "Seed 0: accuracy (%)"]
    # The dashed lines are the curves' own seed's figures, not the mean.
    assert "seed 0 graded: test set, 96.48%" in training
    assert "seed 0 graded: train set, 98.28%" in training
    classes = drawn(monkeypatch, report_plots.classes_png, row, HAR)
    assert classes[:2] == [
        "Accuracy per class (seeds 0, 1, 2 summed)",
        "Test set: confusion matrix (counts, seeds 0, 1, 2 summed)",
    ]
    one = combine(seed_results((0,)), HAR)
    assert drawn(monkeypatch, report_plots.training_png, one)[:2] == [
        "Training loss per epoch", "Accuracy (%)"]  # fmt: skip
    assert "graded: test set, 96.48%" in drawn(monkeypatch, report_plots.training_png, one)


def test_grader_check_prints_each_seed_and_their_mean(capsys: pytest.CaptureFixture[str]) -> None:
    row = combine(seed_results(), HAR)
    print_check(Checked(row, HAR, build_report(row, HAR, pictures=False)), None)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [
        "  seeds 0, 1, 2: test accuracy 0.9648, 0.9578, 0.9606",
        "  their mean: train accuracy 0.9814   test accuracy 0.9611 ± 0.0035   gap +0.0203",
    ]
    assert (
        "  144006 parameters, 10 epochs, trained in 45.0 s in all, seeds 0, 1, 2, 1 thread(s)"
        in (lines)
    )
    one = combine(seed_results((1,)), HAR)
    print_check(Checked(one, HAR, build_report(one, HAR, pictures=False)), None)
    out = capsys.readouterr().out
    assert "trained in 15.0 s, seed 1, 1 thread(s)" in out and "mean" not in out


# --- the reproduce command, flagged rows, reference rows --------------------------------------


@pytest.mark.parametrize(
    ("file", "command"),
    [
        ("my_har.py", "grader check my_har.py --assignment har"),
        ("har (2).py", "grader check 'har (2).py' --assignment har"),
        (None, "grader check har.py --assignment har"),  # a run's submissions: har.py
    ],
)
def test_the_command_names_the_file_that_was_checked(
    tmp_path: Path, file: str | None, command: str
) -> None:
    html_text, md = written(tmp_path, detailed(), file=file)
    assert f"```sh\n{command}\n```" in md
    assert f"<pre>{command}</pre>" in html.unescape(html_text)


FLAGGED_MESSAGE = (
    "seed 1: integrity audit: predictions on imperceptibly changed test inputs agree 91.34% "
    "with those on the originals (at least 99.00% expected)"
)


def flagged(**changes: Any) -> Result:
    """mal's row, flagged on seed 1 of 0, 1, 2, as combine leaves it."""
    row = replace(
        seed_results()[1],
        student="mal",
        status=Status.FLAGGED,
        targets={},
        agreement=0.9134,
        perturbed_drop=0.052,
        seeds=[0, 1, 2],
        message=FLAGGED_MESSAGE,
    )
    return replace(row, **changes)


def test_a_flagged_report_explains_the_audit_and_how_to_clear_it(tmp_path: Path) -> None:
    html_text, md = written(tmp_path, flagged())
    for text in (md, html.unescape(html_text)):
        assert "## The integrity audit" in md and "<h2>The integrity audit</h2>" in html_text
        assert "so the row is" in text and "no rank and no targets until an instructor" in text
        assert (
            "What it measured (on seed 1, the seed it flagged): in one shuffled batch it could "
            "not tell apart, the model predicted the training inputs, the test inputs, a copy of "
            "each test input with 10 of its values moved by 0.001 up or down, and the private "
            "hold-out rows if the assignment has them." in text
        )
        assert "Read the submission's code" in text
        assert "The integrity audit held this result for review" in text
        assert "Grading failed" not in text
        assert "Grade again (the same `grader run`" in md
        assert "3f5a" + "0" * 60 in text
    assert (
        "| how often the prediction on a changed copy equals the one on its original | 91.34% | "
        "at least 99.00% |" in md
    )
    assert "| test accuracy lost on the changed copies | +5.20 points | at most 1.00 points |" in md
    assert (
        "| test accuracy (95.78%) above train accuracy (98.01%) | -2.23 points | at most 2.00 "
        "points |" in md
    )
    assert "| accuracy on a private hold-out | not measured | \N{EN DASH} |" in md
    assert (
        '<tr><td>test accuracy lost on the changed copies</td><td class="num">+5.20 points</td>'
        '<td class="num">at most 1.00 points</td></tr>' in html_text
    )
    # Its figures are the flagged seed's, not a mean of the seeds.
    assert "| seeds | 0, 1, 2 (the figures here are seed 1's) |" in md
    assert "| training time | 15.0 s |" in md
    assert "<dt>training time</dt><dd>15.0 s</dd>" in html_text
    # The snippet, pasted into course/reviewed.toml, clears exactly this row.
    snippet = md.split("```toml\n")[1].split("```")[0]
    assert snippet in html.unescape(html_text)
    (tmp_path / "reviewed.toml").write_text(snippet)
    assert load_reviewed(tmp_path / "reviewed.toml") == {("mal", "3f5a" + "0" * 60)}
    assert tomllib.loads(snippet)["reviewed"][0]["note"] == ""


def test_a_flagged_report_shows_the_holdout_it_was_measured_on(tmp_path: Path) -> None:
    row = flagged(holdout_accuracy=0.90, holdout="QMNIST's 50,000 extra test digits", seeds=[1])
    _, md = written(tmp_path, row)
    assert (
        "| test accuracy above the hold-out's (90.00%; QMNIST's 50,000 extra test digits) | "
        "+5.78 points | at most 3.00 points |" in md
    )
    assert "What it measured: in one shuffled batch" in md  # one seed: none to name


def test_an_ok_or_failed_row_has_no_audit_section(tmp_path: Path) -> None:
    for row in (detailed(), Result("bob", "har", Status.ERROR, message="boom")):
        html_text, md = written(tmp_path, row)
        assert "integrity audit" not in md and 'id="audit"' not in html_text


def test_baselines_reports_live_under_a_folder_named_for_them(tmp_path: Path) -> None:
    assert report_folder(tmp_path, "sklearn:linear_svm", "baseline") == (
        tmp_path / "reports" / "baselines" / "sklearn-linear_svm"
    )
    odd = report_folder(tmp_path, "../..", "baseline")
    assert odd.parent == tmp_path / "reports" / "baselines"
    assert re.fullmatch(r"reference-[0-9a-f]{12}", odd.name)
    row = replace(detailed(), student="sklearn:random_forest", kind="baseline")
    (paths,) = {p.parent for p in write_reports([row], {"har": HAR}, tmp_path)}
    assert paths == tmp_path / "reports" / "baselines" / "sklearn-random_forest"
    md = (paths / "har.md").read_text()
    assert "grader check" not in md  # no student file to check
    assert "A reference row: sklearn\\:random\\_forest is a baseline the grader fits itself" in md
    assert "What to try" not in md  # no advice for the grader's own model
