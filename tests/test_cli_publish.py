"""`grader leaderboard` renders from the store (never retrains), `grader run` reports every row
and reads well in a log or a script, `grader check` explains and can write the same report."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import Result
from support.cli import invoke
from support.grading import GOOD_HAR
from support.paths import ASSIGNMENTS
from support.results import baseline, graded
from support.runs import options

from grader.api import run
from grader.sandbox.box import Sandbox
from grader.store.sqlite import Store


def assert_error(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store as two runs left it: alice resubmitted (worse), bob failed, one baseline."""
    path = tmp_path / "results" / "grades.sqlite"
    store = Store(path)
    store.record(graded("alice", 0.98, message="first attempt"))
    store.record(graded("alice", 0.95, message="resubmitted"))
    store.record(graded("bob", 0.0, status="error", test_accuracy=None, message="boom"))
    store.record(baseline())
    store.record_students({"alice": {"pseudonym": "Owl", "late": True}}, "t")
    return path


def test_every_format_from_the_store(store: Path) -> None:
    out = store.parent
    result = invoke(
        "leaderboard", "--out", out, "--assignments", ASSIGNMENTS,
        "--format", "html", "--format", "md", "--format", "json", "--format", "csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("leaderboard.html", "leaderboard.md", "leaderboard.json", "leaderboard.csv",
                 "leaderboard.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert "alice" in result.stdout and "logistic-regression" in result.stdout
    document = json.loads((out / "leaderboard.json").read_text())
    (har,) = document["assignments"]
    assert [(r["student"], r["message"], r["late"]) for r in har["rows"]] == [
        ("alice", "resubmitted", True), ("bob", "boom", None)]  # fmt: skip
    assert document["policy"] == "latest"


def test_best_policy_picks_the_best_attempt(store: Path) -> None:
    out = store.parent
    result = invoke("leaderboard", "--out", out, "--format", "json", "--policy", "best")
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "leaderboard.json").read_text())["assignments"][0]["rows"]
    assert rows[0]["message"] == "first attempt" and rows[0]["test_accuracy"] == 0.98


def test_anonymized_page_into_another_folder(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    result = invoke(
        "leaderboard", "--store", store, "--out", out, "--format", "html", "--format", "json",
        "--anonymize",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    public = out / "publish"
    assert [p.name for p in out.iterdir()] == ["publish"]
    assert sorted(p.name for p in public.iterdir()) == ["leaderboard.html", "leaderboard.json"]
    for path in public.iterdir():
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text())
        assert "alice" not in text and "bob" not in text
        assert "Owl" in text
    assert not (store.parent / "leaderboard.html").exists()


def test_a_public_anonymized_board_leaves_messages_and_flagged_rows_off(
    store: Path, tmp_path: Path
) -> None:
    Store(store).record(graded("cy", 0.999, status="flagged", message="integrity audit: agree"))
    out = tmp_path / "public"
    result = invoke(
        "leaderboard", "--store", store, "--out", out, "--assignments", ASSIGNMENTS,
        "--format", "html", "--format", "md", "--format", "json", "--anonymize", "--public",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    texts = {p.suffix: p.read_text() for p in (out / "publish").glob("leaderboard.*[dln]")}
    for suffix in (".html", ".md", ".json"):
        text = texts[suffix]
        assert "resubmitted" not in text and "boom" not in text and "integrity" not in text
    for suffix in (".html", ".md"):
        assert "1 flagged (held for review) not shown on this board" in texts[suffix], suffix
    (har,) = json.loads(texts[".json"])["assignments"]
    assert har["summary"]["held_for_review_not_shown"] == 1
    assert [(r["student"], r["status"], r["message"]) for r in har["rows"]] == [
        ("Owl", "ok", ""), (har["rows"][1]["student"], "error", "")]  # fmt: skip
    assert "integrity" not in result.stdout and "boom" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "unknown format 'xml' (known: csv, md, html, json)"),
        (["--format", "html", "--format", "pdf"],
         "unknown format 'pdf' (known: csv, md, html, json)"),
        (["--policy", "worst"], "unknown policy 'worst' (known: best, latest)"),
    ],
)  # fmt: skip
def test_unknown_format_or_policy_is_one_line(store: Path, args: list[str], message: str) -> None:
    assert_error(invoke("leaderboard", "--out", store.parent, *args), message)


def test_a_store_with_no_graded_rows_is_one_line(tmp_path: Path) -> None:
    Store(tmp_path / "grades.sqlite")
    result = invoke("leaderboard", "--out", tmp_path, "--format", "html")
    assert_error(
        result, f"{tmp_path / 'grades.sqlite'} holds no graded submissions; run `grader run` first"
    )
    assert not (tmp_path / "leaderboard.html").exists()


def test_a_missing_store_named_by_store_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere" / "grades.sqlite"
    result = invoke("leaderboard", "--store", missing, "--out", tmp_path, "--format", "md")
    assert_error(result, f"no results store at {missing}; run `grader run` first")


def test_leaderboard_never_grades(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import grader.jobs.grade

    def refuse(*_: object) -> None:
        raise AssertionError("the leaderboard must render from the store")

    monkeypatch.setattr(grader.jobs.grade, "grade", refuse)
    monkeypatch.setattr(Sandbox, "__init__", refuse)
    assert invoke("leaderboard", "--out", store.parent, "--format", "html").exit_code == 0


# --- grader run: reports for every row, log lines, --json, --quiet ------------------------------


@pytest.mark.slow
def test_a_run_reports_every_row_and_says_what_student_toml_ignored(
    course: dict[str, Path],
    sandbox: Sandbox,
) -> None:
    (course["submissions"] / "cy" / "har.py").write_text("raise RuntimeError('oops')\n")
    (course["submissions"] / "ben" / "student.toml").write_text('late = true\ncolour = "red"\n')
    said: list[str] = []
    seen: list[tuple[str, int, int]] = []
    summary = run(
        options(course), sandbox, said.append, lambda r, done, total: seen.append(
            (r.student, done, total))
    )  # fmt: skip
    assert sorted(s for s, _, _ in seen) == ["ana", "ben", "cy"]
    assert [(d, t) for _, d, t in seen] == [(1, 3), (2, 3), (3, 3)]
    assert "ben/student.toml: ignored: unknown key 'colour'" in said
    assert summary.reports_written == 3
    for student in ("ana", "ben", "cy"):
        for suffix in (".html", ".md"):
            assert (course["out"] / "reports" / student / f"har{suffix}").is_file()
    assert (course["out"] / "reports" / "ana" / "har-training.png").is_file()
    cy = (course["out"] / "reports" / "cy" / "har.md").read_text()
    assert "RuntimeError: oops" in cy and "grader check har.py --assignment har" in cy
    assert "late" in (course["out"] / "reports" / "ben" / "har.html").read_text()
    # Reused rows keep their reports; a missing one is written again.
    (course["out"] / "reports" / "ana" / "har.html").unlink()
    again = run(options(course), sandbox, said.append)
    assert (again.graded, again.reports_written) == (0, 1)
    assert (course["out"] / "reports" / "ana" / "har.html").is_file()


@pytest.mark.slow
def test_cli_run_in_a_log_json_and_quiet(course: dict[str, Path]) -> None:
    args = [
        "run", course["submissions"], "--out", course["out"], "--assignments",
        course["assignments"], "--data-dir", course["data"], "--cache-dir", course["cache"],
        "--workers", "1",
    ]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert [line[:6] for line in lines] == ["[1/3] ", "[2/3] ", "[3/3] "]  # no bar: not a TTY
    assert all(
        re.search(r"\w+/har: ok, test \d+\.\d\d%, gap [+-]\d+\.\d\d points", x) for x in lines
    )
    assert "3 rows: 3 ok; 3 graded now, 0 reused" in result.stderr
    assert "#  student" in result.stdout  # the table

    as_json = invoke(*args, "--json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert (document["graded"], document["reused"]) == (0, 3)
    assert sorted(r["student"] for r in document["rows"]) == ["ana", "ben", "cy"]
    assert {r["rank"] for r in document["rows"]} == {1, 2, 3}
    assert document["reports"] == str(course["out"] / "reports")

    quiet = invoke(*args, "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout == ""
    assert [x for x in quiet.stderr.splitlines() if not x.startswith("warning")] == []


@pytest.mark.slow
def test_check_prints_the_diagnosis_and_writes_the_report(
    tmp_path: Path,
    tiny_data_dir: Path,
) -> None:
    source = tmp_path / "me" / "har.py"
    source.parent.mkdir()
    source.write_text(textwrap.dedent(GOOD_HAR))
    report = tmp_path / "report"
    result = invoke(
        "check", source, "--assignments", ASSIGNMENTS, "--data-dir", tiny_data_dir,
        "--cache-dir", tmp_path / "cache", "--report", report, "--timeout", "60",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "diagnosis:" in result.stdout
    assert "margin" in result.stdout
    assert re.search(r"^    lesson: course/lessons/\S+\.md(#\S+)?$", result.stdout, re.MULTILINE)
    # the sandbox in one line for a student; `grader sandbox` lists the layers
    said = [line for line in result.stderr.splitlines() if line.startswith(("sandbox", "jobs:"))]
    assert len(said) == 1 and " layers on" in said[0], said
    assert said[0].endswith("(`grader sandbox` lists them)"), said
    assert sorted(p.name for p in report.iterdir()) == [
        "har-classes.png", "har-training.png", "har.html", "har.md"]  # fmt: skip
    md = (report / "har.md").read_text()
    for finding in re.findall(r"^  (\w[^.]+)\. ", result.stdout, re.MULTILINE):
        assert finding in md
