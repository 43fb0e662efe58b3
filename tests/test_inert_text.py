"""Student text stays inert in every output: a right-to-left override, a zero-width space and a
URL in a message, a log tail, a pseudonym or a folder name never reach the CSV, Markdown, HTML,
JSON, the reports or the terminal as themselves, and no Markdown viewer makes a link of them."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

import pytest
from support.cli import invoke
from support.course import SPECS, write_course
from support.inert import MESSAGE, PSEUDONYM, URL, assert_inert, hidden, linkified
from support.paths import ASSIGNMENTS
from support.results import graded

import grader.api
import grader.api.batch
import grader.api.single
from grader.core.results import Result
from grader.core.submission import StudentMeta, read_meta
from grader.core.text import one_line, printable, visible
from grader.publish.board import build_board, write_board
from grader.publish.progress import line
from grader.publish.render import md_text
from grader.publish.reports import build_report, render_markdown, write_report
from grader.store.sqlite import Store

SECRET = b"s" * 32
FOLDER = "\u202emal\u200blory"  # a rejected folder's name: the student column shows it
LOG_TAIL = f"Traceback (most recent call last):\n  x\n{MESSAGE}\n"


def crashed(student: str, status: str = "error") -> Result:
    return Result(
        student=student, assignment="har", status=status, message=MESSAGE, log_tail=LOG_TAIL
    )


ROWS = [graded("ann", 0.97), graded("bob", 0.96), crashed("cy"), crashed(FOLDER, "invalid")]
META = {"bob": StudentMeta(pseudonym=PSEUDONYM), "cy": StudentMeta(pseudonym=PSEUDONYM + "2")}


# --- the checks themselves ------------------------------------------------------------------


def test_the_checks_see_what_a_viewer_would_link_and_what_hides() -> None:
    assert hidden(MESSAGE) == ["U+202E", "U+200B", "U+2066"]
    shown = linkified(f"see {URL}, [help]({URL}), har.py, a@evil.example, www.evil.example")
    assert shown.count("<a href") == 5, shown


# --- the seam every output goes through ---------------------------------------------------


def test_every_format_character_becomes_visible() -> None:
    invisible = [chr(c) for c in range(sys.maxunicode + 1) if _category(c) in ("Cf", "Zl", "Zp")]
    assert "\u202e" in invisible and "\u200b" in invisible and "\ufeff" in invisible
    text = "".join(invisible)
    assert visible(text) == "?" * len(invisible)
    assert printable(text, keep_lines=True) == "?" * len(invisible)
    assert one_line("a\u202eb\u200bc\u2060d\ufeff", 40) == "a?b?c?d?"
    assert (
        visible("tab\there\nnew line, café, 日本, emoji 🙂")
        == "tab\there\nnew line, café, 日本, emoji 🙂"
    )


def _category(code: int) -> str:
    return "Cs" if 0xD800 <= code <= 0xDFFF else unicodedata.category(chr(code))


@pytest.mark.parametrize(
    "text",
    [
        URL,
        f"[help]({URL})",
        f"<{URL}>",
        "https://evil.example",
        "ftp://evil.example/x",
        "mailto:a@evil.example",
        "a@evil.example",
        "www.evil.example",
        "evil.example/x",
        "//localhost/x",
        "//evil.example/x",
        "see har.py",
        "Evil.Example",
    ],
)
def test_markdown_text_never_becomes_a_link(text: str) -> None:
    assert_inert(md_text(text), markdown=True)
    assert_inert(f"| {md_text(text)} |\n| --- |\n| {md_text(text)} |\n", markdown=True)


def test_markdown_text_still_reads_as_the_text() -> None:
    shown = linkified(md_text(MESSAGE))
    assert f"see {URL} or [help]({URL})" in shown
    assert md_text("accuracy 0.975 at 10:00, ValueError: bad") == (
        "accuracy 0.975 at 10:00, ValueError: bad"
    )


def test_student_toml_text_is_made_visible(tmp_path: Path) -> None:
    path = tmp_path / "student.toml"
    path.write_text(f'pseudonym = "{PSEUDONYM}"\nsource = "lms\u200b"\n', encoding="utf-8")
    meta = read_meta(path)
    assert meta.pseudonym == "?Owl? http://evil.example/x" and meta.source == "lms?"


# --- the leaderboard: csv, md, html, json, plain and anonymized -------------------------------


@pytest.mark.parametrize("secret", [None, SECRET], ids=["plain", "anonymized"])
@pytest.mark.parametrize("fmt", ["csv", "md", "html", "json"])
def test_the_leaderboard_keeps_student_text_inert(
    tmp_path: Path, fmt: str, secret: bytes | None
) -> None:
    board = build_board(ROWS, SPECS, meta=META, secret=secret)
    (path,) = [p for p in write_board(board, tmp_path, [fmt]) if p.suffix == f".{fmt}"]
    text = path.read_text(encoding="utf-8")
    if fmt == "json":  # escaped in the file (\u202e): look at what a reader gets back
        text = json.dumps(json.loads(text), ensure_ascii=False)
    assert_inert(text, markdown=fmt == "md")
    assert "RuntimeError: ?gnp.exe? see" in text.replace("\\", "")  # the text, made visible
    if secret is not None:
        assert "?Owl? http" in text.replace("\\", "")  # the pseudonym is shown, inert too


# --- the reports, html and md ------------------------------------------------------------


@pytest.mark.parametrize("student", ["cy", FOLDER])
def test_reports_keep_student_text_inert(tmp_path: Path, student: str) -> None:
    result = crashed(student)
    report = build_report(result, SPECS["har"], StudentMeta(pseudonym=PSEUDONYM, late=True))
    written = write_report(report, tmp_path)
    html = (tmp_path / "har.html").read_text(encoding="utf-8")
    md = (tmp_path / "har.md").read_text(encoding="utf-8")
    assert {p.name for p in written} == {"har.html", "har.md"}
    assert_inert(html)
    assert_inert(md, markdown=True)
    assert_inert(render_markdown(report), markdown=True)  # Gradescope's output
    assert "?gnp.exe?" in html and "?gnp.exe?" in md


# --- the terminal -------------------------------------------------------------------------


def test_a_run_log_line_keeps_student_text_inert() -> None:
    assert_inert(line(crashed(FOLDER)))


def test_the_leaderboard_table_keeps_student_text_inert(tmp_path: Path) -> None:
    store = Store(tmp_path / "grades.sqlite")
    for row in ROWS:
        store.record(row)
    result = invoke("leaderboard", "--out", tmp_path, "--assignments", ASSIGNMENTS)
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout + result.stderr)
    assert "?gnp.exe?" in result.stdout


def test_run_and_check_print_student_text_inert(
    tmp_path: Path, tiny_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the commands print of a result, whatever text the result holds."""
    monkeypatch.delenv("GRADER_REQUIRE_SANDBOX", raising=False)  # no job runs: --no-sandbox
    # What the commands' use cases grade with: the batch's run(), the check's check().
    monkeypatch.setattr(grader.api.batch, "run", lambda *_, **__: _summary(tmp_path))
    monkeypatch.setattr(grader.api.single, "check", lambda *_, **__: crashed(FOLDER))
    (tmp_path / "subs" / "cy").mkdir(parents=True)
    file = tmp_path / "subs" / "cy" / "har.py"
    file.write_text("x = 1\n")
    common = ["--assignments", ASSIGNMENTS, "--no-sandbox", "--no-warm"]
    ran = invoke("run", tmp_path / "subs", "--out", tmp_path / "out", *common)
    assert ran.exit_code == 0, ran.output
    assert_inert(ran.stdout + ran.stderr)
    assert "?gnp.exe?" in ran.stdout
    data = ["--data-dir", tiny_data_dir, "--cache-dir", tmp_path / "cache"]
    checked = invoke("check", file, *common, *data)
    assert checked.exit_code == 1, checked.output
    assert_inert(checked.stdout + checked.stderr)
    assert "?gnp.exe?" in checked.stdout


def _summary(out: Path) -> grader.api.RunSummary:
    frame = build_board(ROWS, SPECS).frame
    return grader.api.RunSummary(frame, 4, 0, out / "leaderboard.csv", out / "reports")


@pytest.mark.slow
def test_a_real_run_and_check_print_student_text_inert(tmp_path: Path, tiny_data_dir: Path) -> None:
    """End to end: the text comes out of a sandboxed job and a student.toml."""
    course = write_course(tmp_path, tiny_data_dir)  # for its small HAR spec
    folder = tmp_path / "subs" / "cy"
    folder.mkdir(parents=True)
    (folder / "har.py").write_text(f"raise RuntimeError({MESSAGE!r})\n", encoding="utf-8")
    toml = f'pseudonym = "{PSEUDONYM}"\n"colour\u200b" = "red"\n'
    (folder / "student.toml").write_text(toml, encoding="utf-8")
    common = ["--assignments", course["assignments"], "--data-dir", tiny_data_dir]
    common += ["--cache-dir", course["cache"]]
    ran = invoke("run", tmp_path / "subs", "--out", tmp_path / "out", "--workers", "1", *common)
    assert ran.exit_code == 0, ran.output
    assert_inert(ran.stdout + ran.stderr)
    assert "?gnp.exe?" in ran.stdout
    checked = invoke("check", folder / "har.py", *common)
    assert checked.exit_code == 1, checked.output
    assert_inert(checked.stdout + checked.stderr)
    assert "?gnp.exe?" in checked.stdout
