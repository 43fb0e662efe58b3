"""The Gradescope adapter: the autograder zip holds what Gradescope runs, and `grader gradescope
run` writes a results.json that validates against Gradescope's documented format (the schema
in tests/) for a passing, a failing, a crashing submission, and when the grader itself fails."""

from __future__ import annotations

import json
import stat
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from support.grading import GOOD_HAR, TINY_TEST, TINY_TRAIN
from support.paths import ASSIGNMENTS

from grader import __version__
from grader.adapters import gradescope
from grader.cli import main
from grader.core.results import Result, Status
from grader.core.spec import SpecError, load_spec

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def valid(document: dict[str, Any]) -> dict[str, Any]:
    errors = [e.message for e in VALIDATOR.iter_errors(document)]
    assert errors == [], errors
    return document


# --- the schema itself ----------------------------------------------------------------------


def test_the_schema_is_a_valid_schema_and_refuses_what_gradescope_would() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    good = {"tests": [{"name": "t", "score": 1, "max_score": 1, "status": "passed"}]}
    assert VALIDATOR.is_valid(good)
    assert VALIDATOR.is_valid({"score": 3})
    for bad in (
        {"tests": [{"name": "t", "status": "passed"}]},  # no score anywhere
        {"score": 1, "tests": [{"score": 1, "status": "ok"}]},
        {"score": 1, "visibility": "public"},
        {"score": 1, "output_format": "markdown"},
        {"score": 1, "leaderboard": [{"name": "acc", "value": 1, "order": "up"}]},
        {"score": 1, "leaderboard": [{"name": "acc"}]},
        {"score": "10"},
        {"score": 1, "scroe": 2},
    ):
        assert not VALIDATOR.is_valid(bad), bad


# --- build --------------------------------------------------------------------------------------


def test_build_writes_the_zip_with_the_grader_wheel(tmp_path: Path) -> None:
    out = tmp_path / "autograder.zip"
    result = CliRunner().invoke(
        main,
        ["gradescope", "build", "--assignment", "har", "-o", str(out),
         "--assignments", str(ASSIGNMENTS)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        wheel = f"course_grader-{__version__}-py3-none-any.whl"
        assert sorted(names) == sorted(["setup.sh", "run_autograder", "har.toml", wheel])
        for script in ("setup.sh", "run_autograder"):
            mode = archive.getinfo(script).external_attr >> 16
            assert mode & stat.S_IXUSR, script
        assert archive.read("har.toml") == (ASSIGNMENTS / "har.toml").read_bytes()
        setup = archive.read("setup.sh").decode()
        assert f"/autograder/source/{wheel}" in setup
        assert "grader data uci_har" in setup and "download.pytorch.org/whl/cpu" in setup
        run = archive.read("run_autograder").decode()
        assert "grader gradescope run --root /autograder --assignment har" in run
        assert run.startswith("#!/usr/bin/env bash\n") and setup.startswith("#!/usr/bin/env bash\n")
        (tmp_path / wheel).write_bytes(archive.read(wheel))
    with zipfile.ZipFile(tmp_path / wheel) as built:
        inside = set(built.namelist())
    for needed in (
        "grader/cli/__init__.py",
        "grader/api/batch.py",
        "grader/adapters/gradescope.py",
        "grader/assignments/har.toml",
        "grader/publish/templates/leaderboard.html.j2",
        "grader/publish/templates/report.md.j2",
        "grader/publish/templates/sort.js",
    ):
        assert needed in inside, needed
    assert not any(n.startswith(("tests/", "submissions/")) for n in inside)


def test_build_with_an_install_line_ships_no_wheel(tmp_path: Path) -> None:
    out = tmp_path / "autograder.zip"
    names = gradescope.build_zip(
        load_spec(ASSIGNMENTS / "mnist.toml"), out, install="course-grader==0.2.0; echo"
    )
    assert sorted(names) == ["mnist.toml", "run_autograder", "setup.sh"]
    with zipfile.ZipFile(out) as archive:
        setup = archive.read("setup.sh").decode()
    assert "pip install --extra-index-url https://download.pytorch.org/whl/cpu " in setup
    assert "'course-grader==0.2.0;' echo" in setup  # the line's words, quoted: no shell command
    assert "grader data mnist" in setup


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--assignment", "cifar"],
         "unknown assignment 'cifar' (known: har, mnist); use --assignment"),
        (["--assignment", "har", "--wheel", __file__, "--install-line", "x"],
         "--wheel and --install-line contradict each other"),
    ],
)  # fmt: skip
def test_build_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        main,
        ["gradescope", "build", "-o", str(tmp_path / "a.zip"), "--assignments", str(ASSIGNMENTS),
         *args],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: {message}"
    assert not (tmp_path / "a.zip").exists()


# --- results.json from results, without grading ---------------------------------------------

SPEC = load_spec(ASSIGNMENTS / "har.toml")


def test_a_graded_result_scores_its_targets_and_fills_the_leaderboard() -> None:
    result = Result(
        student="submission",
        assignment="har",
        status="ok",
        test_accuracy=0.9653,
        train_accuracy=0.9874,
        gap=0.0221,
        targets={"A": False, "B": False},
        params=144006,
        checks=[{"name": "defines_build_model", "passed": True}],
    )
    document = valid(gradescope.results_json(result, SPEC, 12.34))
    targets = [t for t in document["tests"] if t["tags"] == ["target"]]
    assert [(t["name"][:8], t["status"], t["score"], t["max_score"]) for t in targets] == [
        ("target A", "failed", 0, 5.0), ("target B", "failed", 0, 5.0)]  # fmt: skip
    assert (
        "test accuracy: 96.53%, needed > 96.00%, margin +0.53 points (met)" in targets[0]["output"]
    )
    assert (
        "train-test gap: +2.21 points, needed < 2.00 points, margin -0.21 points (missed)"
        in (targets[0]["output"])
    )
    assert document["leaderboard"] == [
        {"name": "test accuracy", "value": 96.53, "order": "desc"},
        {"name": "gap", "value": 2.21, "order": "asc"},
        {"name": "params", "value": 144006, "order": "asc"},
    ]
    assert document["execution_time"] == 12.3 and document["score"] == 0
    assert "Overfitting" in document["output"]


# --- run: a passing, a failing and a crashing submission, through the real sandbox ------------

CRASHING = GOOD_HAR + "\nimport os\nos.abort()\n"  # dies by SIGABRT, before any report
FAILING = GOOD_HAR.replace("torch.nn.Linear(16, num_classes)", "torch.nn.Linear(16, 5)")


@pytest.fixture
def autograder(tmp_path: Path) -> Path:
    """A Gradescope-like ROOT: the spec in source/ (small budgets, points on checks and
    targets), the student's file in submission/."""
    from support.data import write_tiny_har

    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    text = (ASSIGNMENTS / "har.toml").read_text()
    text = text.replace("max_epochs = 100", "max_epochs = 5").replace(
        "timeout_seconds = 600", "timeout_seconds = 60"
    )
    text = text.replace("check_points = 0 ", "check_points = 1 ")
    (root / "source" / "har.toml").write_text(text)
    write_tiny_har(tmp_path / "data", TINY_TRAIN, TINY_TEST)
    return root


def grade(root: Path, source: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    (root / "submission" / "har.py").write_text(textwrap.dedent(source))
    data = root.parent / "data"
    result = CliRunner().invoke(
        main,
        ["gradescope", "run", "--root", str(root), "--data-dir", str(data),
         "--cache-dir", str(root.parent / "cache"), *extra],
    )  # fmt: skip
    document = json.loads((root / "results" / "results.json").read_text())
    return result.exit_code, valid(document), result.output


@pytest.mark.slow
def test_a_passing_submission(autograder: Path) -> None:
    code, document, output = grade(autograder, GOOD_HAR)
    assert code == 0, output
    checks = [t for t in document["tests"] if t["tags"] == ["contract"]]
    assert [t["name"] for t in checks] == [
        "contract: defines_build_model", "contract: defines_hparams", "contract: hparams_valid",
        "contract: build_model_returns_module", "contract: model_has_parameters",
        "contract: forward_output_shape",
    ]  # fmt: skip
    assert all((t["status"], t["score"], t["max_score"]) == ("passed", 1.0, 1.0) for t in checks)
    targets = [t for t in document["tests"] if t["tags"] == ["target"]]
    assert [t["name"].split(":")[0] for t in targets] == ["target A", "target B"]
    assert document["score"] == 6 + sum(t["score"] for t in targets)
    assert [e["name"] for e in document["leaderboard"]] == ["test accuracy", "gap", "params"]
    assert document["leaderboard"][2]["value"] == 561 * 16 + 16 + 16 * 6 + 6
    assert document["output_format"] == "md" and "## Diagnosis" in document["output"]


@pytest.mark.slow
def test_a_failing_submission(autograder: Path) -> None:
    code, document, output = grade(autograder, FAILING)
    assert code == 0, output
    checks = {t["name"]: t for t in document["tests"] if t["tags"] == ["contract"]}
    failed = checks["contract: forward_output_shape"]
    assert (failed["status"], failed["score"], failed["max_score"]) == ("failed", 0, 1.0)
    assert "expected (2, 6)" in failed["output"]
    assert checks["contract: defines_build_model"]["status"] == "passed"
    targets = [t for t in document["tests"] if t["tags"] == ["target"]]
    assert [(t["status"], t["score"]) for t in targets] == [("failed", 0), ("failed", 0)]
    assert "leaderboard" not in document
    assert document["score"] == 5  # the five checks before the one that failed
    assert "breaks the contract" in document["output"]


@pytest.mark.slow
def test_a_crashing_submission(autograder: Path) -> None:
    code, document, output = grade(autograder, CRASHING)
    assert code == 0, output
    (loads, *targets) = document["tests"]
    assert (loads["name"], loads["status"], loads["score"]) == (
        "contract: the submission loads", "failed", 0)  # fmt: skip
    # SIGABRT from a shell; under pytest, glibc's abort may end in SIGSEGV instead: any signal
    assert "crashed" in loads["output"] and "was killed by SIG" in loads["output"]
    assert [t["status"] for t in targets] == ["failed", "failed"]
    assert document["score"] == 0 and "leaderboard" not in document


@pytest.mark.slow
def test_when_the_grader_itself_fails_results_json_still_validates(autograder: Path) -> None:
    (autograder.parent / "data" / "UCI_HAR" / "UCI HAR Dataset" / "test" / "y_test.txt").unlink()
    code, document, output = grade(autograder, GOOD_HAR)
    assert code == 1
    assert output.strip().splitlines()[-1].startswith("Error: ")
    assert document["score"] == 0 and document["tests"] == []
    assert "could not grade this submission" in document["output"]


def test_the_assignment_comes_from_the_zip_spec_else_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "my_mnist.py").write_text("x = 1\n")
    located = gradescope.locate(tmp_path, None)  # no source/: the packaged specs, by file name
    assert (located.spec.name, located.source) == ("mnist", tmp_path / "submission" / "my_mnist.py")
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "har.toml").write_text((ASSIGNMENTS / "har.toml").read_text())
    located = gradescope.locate(tmp_path, None)  # the zip's spec wins
    assert located.spec.name == "har" and located.source == tmp_path / "submission" / "my_mnist.py"
    (tmp_path / "submission" / "other.py").write_text("y = 2\n")
    located = gradescope.locate(tmp_path, "har")
    assert located.source is None
    assert located.problem == "expected har.py in the submission; found my_mnist.py, other.py"
    with pytest.raises(SpecError, match="unknown assignment 'cifar'"):
        gradescope.locate(tmp_path, "cifar")


def test_a_submission_without_the_file_gets_a_valid_failed_results_json(tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "har.toml").write_text((ASSIGNMENTS / "har.toml").read_text())
    (tmp_path / "submission").mkdir()

    def never(file: Path, spec: Any) -> Result:
        raise AssertionError("nothing to grade")

    result = gradescope.run(tmp_path, None, never)
    assert result.status == "invalid"
    document = valid(json.loads((tmp_path / "results" / "results.json").read_text()))
    # Markdown: a file name's dot is escaped, so no viewer takes har.py for a link
    expected = "expected har\\.py in the submission; found no \\.py file"
    assert expected in document["tests"][0]["output"]


def test_the_report_repeats_the_name_of_the_uploaded_file(tmp_path: Path) -> None:
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "my_har.py").write_text("x = 1\n")

    def failing(file: Path, spec: Any) -> Result:
        return Result("submission", spec.name, Status.ERROR, "train: ValueError: no")

    gradescope.run(tmp_path, "har", failing)
    output = json.loads((tmp_path / "results" / "results.json").read_text())["output"]
    assert "grader check my_har.py --assignment har" in output.replace("\\", "")
