"""One-student regrades: `grader run --only` grades just the named students again, keeps the
reason in the store, and leaves every other student's rows, weights and reports as they were."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.cli import invoke
from support.runs import options

from grader.api import RunRequest, run
from grader.core.errors import UserError
from grader.sandbox.box import Sandbox

OTHERS = ("ben", "cy")


def _store_rows(out: Path, table: str, student: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(out / "grades.sqlite") as db:
        return db.execute(
            f"SELECT * FROM {table} WHERE student = ? ORDER BY rowid", (student,)
        ).fetchall()


def _files(out: Path, student: str) -> dict[Path, tuple[bytes, int]]:
    """Each file the run wrote for the student (weights, reports): its bytes and mtime."""
    paths = [*out.glob(f"weights/*/{student}.*"), *(out / "reports" / student).iterdir()]
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in paths}


def _board(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "leaderboard.csv").set_index("student")


@pytest.mark.slow
def test_only_regrades_one_student_and_leaves_the_others_untouched(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    out = course["out"]
    (course["submissions"] / "ben" / "student.toml").write_text('pseudonym = "Bee"\n')
    run(options(course), sandbox, lambda _: None)
    before = {
        s: (_store_rows(out, "attempts", s), _store_rows(out, "students", s), _files(out, s))
        for s in OTHERS
    }
    board = _board(out)
    ana_report = out / "reports" / "ana" / "har.html"
    ana_written = ana_report.stat().st_mtime_ns

    result = invoke(
        "run", course["submissions"], "--out", out, "--assignments", course["assignments"],
        "--data-dir", course["data"], "--cache-dir", course["cache"], "--workers", "1",
        "--only", "ana", "--reason", "regrade request #12",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "regrading only ana, every other row kept as it is" in result.stderr
    assert "1 submissions: 0 unchanged and reused, 1 to grade" in result.stderr
    for student in OTHERS:
        after = _store_rows(out, "attempts", student), _store_rows(out, "students", student)
        assert (*after, _files(out, student)) == before[student]
        pd.testing.assert_series_equal(_board(out).loc[student], board.loc[student])
    with sqlite3.connect(out / "grades.sqlite") as db:
        regrades = db.execute(
            "SELECT attempts.student, runs.only_students, runs.reason FROM attempts "
            "JOIN runs ON attempts.run_id = runs.id WHERE runs.reason != ''"
        ).fetchall()
    assert regrades == [("ana", '["ana"]', "regrade request #12")]
    assert len(_store_rows(out, "attempts", "ana")) == 2  # graded again though unchanged
    assert ana_report.stat().st_mtime_ns > ana_written


def test_an_unknown_student_is_one_line_naming_the_close_ones(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    request = RunRequest(("anna", "bne", "zed"), "regrade request #3")
    with pytest.raises(UserError) as raised:
        run(options(course, request=request), sandbox, lambda _: None)
    where = course["submissions"]
    assert str(raised.value) == (
        f"--only: no student 'anna' in {where} (did you mean ana?); "
        f"--only: no student 'bne' in {where} (did you mean ben?); "
        f"--only: no student 'zed' in {where}"
    )
    assert not course["out"].exists()  # refused before the store or any grading


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--only", "ana,,ben"], "--only 'ana,,ben': expected student ids, as in alice,bob"),
        (["--only", "ana,ana"], "--only 'ana,ana': a student is named twice"),
        (
            ["--only", "ana", "--reason", "request\n#12"],
            "--reason: expected one line of at most 200 printable characters",
        ),
    ],
)
def test_bad_only_and_reason_flags_are_one_line_errors(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    # Refused while the options are read: before any sandbox, store or grading.
    result = invoke("run", tmp_path, "--out", tmp_path / "results", *flags)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: {message}"
    assert not (tmp_path / "results").exists()
