"""`grader canvas-push` against a local fake of Canvas's REST endpoints (never the network):
the changes said old → new, a dry run sending nothing, and one-line errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.cli import invoke
from support.fake_canvas import ASSIGNMENT, COURSE, TOKEN, fake_canvas

pytest.importorskip("canvasapi")

GRADEBOOK = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Homework 1 (4400),Homework 2 (4455)\n"
    "    Points Possible,,,,,10,12\n"
    '"Doe, Jane",101,jd1,jdoe,A,9,12\n'
    '"Roe, Rick",102,rr2,rroe,A,8,7.5\n'
    '"Poe, Ed",103,ep3,epoe,B,7,\n'
    '"=cmd()|Gone\u202e",999,x,x,B,1,3\n'
)
CANVAS_NOW = {101: 12.0, 102: 6.0, 103: None, 104: None}


@pytest.fixture
def gradebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CANVAS_TOKEN", TOKEN)
    path = tmp_path / "gradebook.csv"
    path.write_text(GRADEBOOK, encoding="utf-8")
    return path


def _push(gradebook: Path, url: str, *extra: str) -> list[str]:
    result = invoke(
        "canvas-push", gradebook, "--url", url, "--course", str(COURSE),
        "--assignment-id", str(ASSIGNMENT), *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_a_dry_run_says_what_would_change_and_sends_nothing(gradebook: Path) -> None:
    with fake_canvas(CANVAS_NOW) as canvas:
        lines = _push(gradebook, canvas.url, "--dry-run")
    assert lines == [
        f"Homework 2 (course {COURSE}, assignment {ASSIGNMENT}): 1 to change, 1 unchanged, "
        "1 blank in the file, 1 not in the course",
        "  Roe, Rick (102): 6 → 7.5",
        "  not in the course, not sent: =cmd()|Gone? (999)",
        "dry run: nothing sent",
    ]
    assert canvas.posted == []


def test_a_push_sends_only_the_changed_scores(gradebook: Path) -> None:
    with fake_canvas(CANVAS_NOW) as canvas:
        lines = _push(gradebook, canvas.url)
    assert canvas.posted == [{"grade_data[102][posted_grade]": "7.5"}]
    assert lines[-1] == f"sent 1 scores; Canvas applies them: {canvas.url}/api/v1/progress/1"


def test_an_ungraded_student_is_a_change_from_none(gradebook: Path) -> None:
    with fake_canvas({**CANVAS_NOW, 101: None}) as canvas:
        lines = _push(gradebook, canvas.url)
    assert "  Doe, Jane (101): none → 12" in lines
    assert canvas.posted == [
        {"grade_data[101][posted_grade]": "12", "grade_data[102][posted_grade]": "7.5"}
    ]


def _error(gradebook: Path, url: str, *extra: str) -> str:
    result = invoke(
        "canvas-push", gradebook, "--url", url, "--course", str(COURSE),
        "--assignment-id", str(ASSIGNMENT), *extra,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    return line


def test_a_missing_token_is_one_line(gradebook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANVAS_TOKEN")
    assert _error(gradebook, "https://canvas.example.edu") == (
        "Error: no Canvas access token in $CANVAS_TOKEN: make one in Canvas (Account, "
        "Settings, New access token) and export it, or name another variable with --token-env"
    )


def test_a_refused_token_and_an_unknown_course_are_one_line(
    gradebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_canvas(CANVAS_NOW) as canvas:
        monkeypatch.setenv("OTHER_TOKEN", "wrong")
        refused = _error(gradebook, canvas.url, "--token-env", "OTHER_TOKEN")
        assert refused == f"Error: Canvas at {canvas.url} refused the access token"
        result = invoke(
            "canvas-push", gradebook, "--url", canvas.url, "--course", "8",
            "--assignment-id", str(ASSIGNMENT),
        )  # fmt: skip
    assert result.stderr.splitlines() == [
        f"Error: Canvas has no course 8, assignment {ASSIGNMENT} (or the token cannot see it)"
    ]


@pytest.mark.parametrize(
    "url", ["http://canvas.example.edu", "https://canvas.example.edu/api/v1", "canvas"]
)
def test_a_bad_url_is_one_line(gradebook: Path, url: str) -> None:
    assert _error(gradebook, url) == (
        f"Error: --url {url!r}: expected the Canvas instance's https address, such as "
        "https://canvas.example.edu (no /api/v1; plain http only to localhost)"
    )


def test_an_unreachable_canvas_is_one_line(gradebook: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    assert _error(gradebook, url) == f"Error: cannot reach Canvas at {url} (ConnectionError)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Student,ID\n", "no column for assignment 4455 (a header ending '(4455)', as in "
         "'Homework 2 (4455)')"),
        ("Student,ID,A (4455)\nJane,101,lots\n", "line 2: score 'lots' is not a number"),
        ("Student,ID,A (4455)\nJane,x1,3\n", "line 2: 'x1' is not a Canvas user id"),
    ],
)  # fmt: skip
def test_a_bad_gradebook_file_is_one_line(gradebook: Path, text: str, message: str) -> None:
    gradebook.write_text(text)
    with fake_canvas(CANVAS_NOW) as canvas:
        error = _error(gradebook, canvas.url)
    separator = ": " if message.startswith("no column") else " "
    assert error == f"Error: {gradebook}{separator}{message}"
    assert canvas.posted == []
