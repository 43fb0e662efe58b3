"""The command line's user errors: exit code 1 and one pinned `Error: ...` line, before any data
is prepared or any student code runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import Result
from support.cli import invoke

from grader import __version__
from grader.core.results import Result as Graded
from grader.core.spec import PACKAGED
from grader.store.sqlite import Store

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "course" / "assignments"
STARTER = REPO / "starter"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CI exports GRADER_REQUIRE_SANDBOX; data must never be needed (or downloaded) here."""
    for name in ("GRADER_REQUIRE_SANDBOX", "GRADER_ASSIGNMENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "no-cache"))


def assert_error(result: Result, message: str) -> None:
    """Exit 1, nothing on stdout, and the error is the last stderr line and the only one."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[-1] == f"Error: {message}"
    assert sum(line.startswith("Error") for line in lines) == 1


def run_args(tmp_path: Path, submissions: Path, *extra: str | Path) -> list[str | Path]:
    return [
        "run",
        submissions,
        "--out",
        tmp_path / "results",
        "--no-sandbox",
        "--assignments",
        COURSE,
        *extra,
    ]


# --- grader run -----------------------------------------------------------------------------


def test_run_missing_submissions_folder(tmp_path: Path) -> None:
    missing = tmp_path / "submissions"
    result = invoke(*run_args(tmp_path, missing))
    assert_error(result, f"submissions folder {missing} does not exist")
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "no-cache").exists()


def test_run_submissions_is_a_file(tmp_path: Path) -> None:
    archive = tmp_path / "submissions.zip"
    archive.write_bytes(b"PK")
    assert_error(invoke(*run_args(tmp_path, archive)), f"{archive} is not a folder")


def test_run_empty_submissions_folder(tmp_path: Path) -> None:
    empty = tmp_path / "submissions"
    empty.mkdir()
    (empty / "alice").mkdir()
    result = invoke(*run_args(tmp_path, empty))
    assert_error(
        result,
        f"no submissions in {empty} (expected files like <student>/har.py, <student>/mnist.py)",
    )
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "[assignment]\nname = 'har'\ntitle = 'HAR'\ndataset = 'uci_har'\ninput_shape = [561]\n"
            "num_classes = 6\n[budgets]\nmax_epochs = 'ten'\n",
            "key 'budgets.max_epochs' must be of type int, not str",
        ),
        ("[assignment]\nname = 'har'\n", "key 'assignment.title' is missing"),
        (
            "[assignment\n",
            "not valid TOML (Expected ']' at the end of a table declaration "
            "(at line 1, column 12))",
        ),
    ],
)
def test_run_with_a_broken_spec(tmp_path: Path, text: str, problem: str) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "har.toml").write_text(text)
    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    (submissions / "alice" / "har.py").write_text("x = 1\n")
    result = invoke(
        "run", submissions, "--out", tmp_path / "results", "--no-sandbox", "--assignments", specs
    )
    assert_error(result, f"{specs / 'har.toml'}: {problem}")


def test_run_with_an_empty_assignments_folder(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    result = invoke("run", tmp_path, "--no-sandbox", "--assignments", specs)
    assert_error(result, f"{specs}: no assignment specs (*.toml) found")


def test_run_assignments_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.setenv("GRADER_ASSIGNMENTS", str(specs))
    result = invoke("run", tmp_path, "--no-sandbox")
    assert_error(result, f"{specs}: no assignment specs (*.toml) found")


def test_run_require_and_no_sandbox_contradict(tmp_path: Path) -> None:
    result = invoke(*run_args(tmp_path, tmp_path, "--require-sandbox"))
    assert_error(result, "--require-sandbox and --no-sandbox contradict each other")
    assert result.stderr.splitlines() == [
        "Error: --require-sandbox and --no-sandbox contradict each other"
    ]


def test_run_require_sandbox_from_the_environment_contradicts_no_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_REQUIRE_SANDBOX", "1")
    result = invoke(*run_args(tmp_path, tmp_path))
    assert_error(result, "--require-sandbox and --no-sandbox contradict each other")


# --- grader check ---------------------------------------------------------------------------


def test_check_unknown_assignment(tmp_path: Path) -> None:
    source = tmp_path / "foo.py"
    source.write_text("x = 1\n")
    result = invoke("check", source, "--assignments", COURSE, "--no-sandbox")
    message = "unknown assignment 'foo' (known: har, mnist); use --assignment"
    assert_error(result, message)
    assert result.stderr == f"specs: {COURSE} (from --assignments)\nError: {message}\n"


def test_check_unknown_assignment_option(tmp_path: Path) -> None:
    source = tmp_path / "har.py"
    source.write_text("x = 1\n")
    result = invoke("check", source, "--assignment", "cifar", "--assignments", COURSE)
    assert_error(result, "unknown assignment 'cifar' (known: har, mnist); use --assignment")


def test_check_outside_any_course_uses_the_packaged_specs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "cifar.py"
    source.write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("check", source)
    assert_error(result, "unknown assignment 'cifar' (known: har, mnist); use --assignment")
    assert result.stderr.splitlines()[0] == (
        f"specs: {PACKAGED} (packaged with course-grader {__version__})"
    )


def test_check_reports_the_specs_it_found_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = tmp_path / "my-course"
    (course / "course" / "assignments").mkdir(parents=True)
    (course / "course" / "assignments" / "har.toml").write_text((COURSE / "har.toml").read_text())
    source = course / "homework" / "mnist.py"
    source.parent.mkdir()
    source.write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("check", source)
    assert_error(result, "unknown assignment 'mnist' (known: har); use --assignment")
    assert result.stderr.splitlines()[0] == (
        f"specs: {course / 'course' / 'assignments'} (found from {source.parent})"
    )


def test_specs_from_the_environment_are_named_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_ASSIGNMENTS", str(COURSE))
    source = tmp_path / "cifar.py"
    source.write_text("x = 1\n")
    result = invoke("check", source)
    assert result.stderr.splitlines()[0] == f"specs: {COURSE} (from GRADER_ASSIGNMENTS)"


def test_check_finds_the_course_folder_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from elsewhere: the specs are found by walking up from the file (the repo's starter).
    monkeypatch.chdir(tmp_path)
    result = invoke("check", STARTER / "har.py", "--assignment", "nope")
    assert_error(result, "unknown assignment 'nope' (known: har, mnist); use --assignment")


def test_check_infers_the_assignment_from_a_copy_of_the_starter(tmp_path: Path) -> None:
    source = tmp_path / "my_har.py"
    source.write_text((STARTER / "har.py").read_text())
    har = tmp_path / "no-data" / "UCI_HAR"
    (har / "UCI HAR Dataset").mkdir(parents=True)  # present but empty: nothing is downloaded
    result = invoke("check", source, "--no-sandbox")
    missing = har / "UCI HAR Dataset" / "train" / "X_train.txt"
    assert_error(
        result,
        f"{missing} is missing; put the 'UCI HAR Dataset' folder or 'UCI HAR Dataset.zip' "
        f"in {har}/",
    )


def test_check_require_and_no_sandbox_contradict(tmp_path: Path) -> None:
    source = tmp_path / "har.py"
    source.write_text((STARTER / "har.py").read_text())
    result = invoke("check", source, "--assignments", COURSE, "--require-sandbox", "--no-sandbox")
    assert_error(result, "--require-sandbox and --no-sandbox contradict each other")
    assert not (tmp_path / "no-cache").exists()


def test_check_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("check", tmp_path / "missing.py")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# --- grader leaderboard ---------------------------------------------------------------------


def test_leaderboard_without_a_store(tmp_path: Path) -> None:
    result = invoke("leaderboard", "--out", tmp_path)
    assert_error(
        result, f"no results store at {tmp_path / 'grades.sqlite'}; run `grader run` first"
    )
    assert list(tmp_path.iterdir()) == []


def test_leaderboard_with_a_corrupt_store(tmp_path: Path) -> None:
    (tmp_path / "grades.sqlite").write_bytes(b"this is not sqlite" * 100)
    result = invoke("leaderboard", "--out", tmp_path)
    assert_error(
        result,
        f"{tmp_path / 'grades.sqlite'} is not a usable results store (file is "
        "not a database); move it aside and run again to start a new one",
    )
    assert not (tmp_path / "leaderboard.csv").exists()


def test_leaderboard_regenerates_the_csv(tmp_path: Path) -> None:
    store = Store(tmp_path / "grades.sqlite")
    store.record(
        Graded(
            student="alice",
            assignment="mnist",
            status="ok",
            test_accuracy=0.97,
            train_accuracy=0.98,
            gap=0.01,
            targets={"A": True, "B": False},
        )
    )
    store.record(Graded(student="bob", assignment="mnist", status="invalid", message="bad"))
    result = invoke("leaderboard", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert [line.split(",")[:4] for line in lines[1:]] == [
        ["1", "alice", "mnist", "ok"],
        ["", "bob", "mnist", "invalid"],
    ]
    assert "alice" in result.stdout and "bob" in result.stdout


# --- grader canvas-push ---------------------------------------------------------------------


def test_canvas_push_without_the_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "canvasapi", None)  # as if not installed
    monkeypatch.setenv("CANVAS_TOKEN", "token")
    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_text("Student,ID,Homework 2 (4455)\n    Points Possible,,10\nJane,101,9\n")
    result = invoke(
        "canvas-push", gradebook, "--url", "https://canvas.example.edu", "--course", "7",
        "--assignment-id", "4455", "--dry-run",
    )  # fmt: skip
    assert_error(
        result, "pushing grades to Canvas needs canvasapi: pip install 'course-grader[canvas]'"
    )


# --- help -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "purpose"),
    [
        ([], "Grade PyTorch homework: sandboxed, deterministic, with a leaderboard."),
        (
            ["run"],
            "Grade every SUBMISSIONS/<student>/<assignment>.py and write OUT/leaderboard.csv.",
        ),
        (
            ["check"],
            "Grade one FILE exactly as `grader run` would, and say which targets it meets.",
        ),
        (
            ["leaderboard"],
            "Render the leaderboard from the results store, as csv, md, html or json.",
        ),
        (
            ["gradescope"],
            "Package the grader as a Gradescope autograder, and grade inside one.",
        ),
        (
            ["gradescope", "build"],
            "Write the autograder zip: setup.sh, run_autograder, the spec and the grader's wheel.",
        ),
        (
            ["gradescope", "run"],
            "Grade ROOT/submission/<assignment>.py into ROOT/results/results.json.",
        ),
        (
            ["sandbox"],
            "Show which isolation layers jobs on this machine really get (a probe job "
            "proves them), and whether MNIST's private hold-out is here.",
        ),
        (
            ["data"],
            "Download (if needed), verify and cache the datasets NAMES (default: all), and "
            "MNIST's private hold-out, QMNIST's extra test digits.",
        ),
        (
            ["canvas-push"],
            "Push the scores in GRADEBOOK, Canvas's gradebook import CSV, to one assignment.",
        ),
    ],
    ids=lambda value: ("-".join(value) or "main") if isinstance(value, list) else "",
)
def test_help(command: list[str], purpose: str) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert purpose in " ".join(result.stdout.split())
    assert result.stdout.startswith("Usage: ")


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"grader, version {__version__}\n"
