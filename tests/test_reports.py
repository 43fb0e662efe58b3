"""A report for every row: targets with exact margins, the diagnosis in plain words, real
pictures embedded in one HTML file (and beside its Markdown twin), failures with their log tail
and the command that reproduces them."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from support.course import HAR, SPECS
from support.results import detailed, history

from grader.core.results import Mode, Result
from grader.core.submission import StudentMeta
from grader.publish.diagnosis import diagnose
from grader.publish.reports import build_report, report_folder, write_report

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
