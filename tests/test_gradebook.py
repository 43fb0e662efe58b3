"""`grader gradebook`: points from the store's rows and the policy, the late penalty computed at
export (a moved due date changes it, nothing is regraded), and the files Canvas and Moodle
import, matched to the course's own roster."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from support.cli import invoke
from support.course import HAR, SPECS, write_course
from support.grading import GOOD_HAR
from support.paths import ASSIGNMENTS
from support.results import graded

from grader.core.submission import StudentMeta
from grader.grades.points import points
from grader.grades.policy import GradingPolicy, Late, PolicyError, load_policy
from grader.store.sqlite import Store

DUE = "2026-09-14T23:59:00+00:00"
POLICY = f"""
missing = 0

[failed]
error = 1

[late]
grace_minutes = 15
per = "day"
penalty_percent = 10
cap_percent = 50

[assignments.har]
due = {DUE}
max = 11
bonus = [2]

[assignments.har.extensions]
leeann = 2026-09-17T23:59:00+00:00
"""
# Canvas's own gradebook export: its Points Possible row, a test student, a read-only column.
CANVAS_ROSTER = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Homework 2 (4455),Current Score
    Points Possible,,,,,10,(read only)
"Doe, Jane",12345,S1,jdoe,Sec A,,
"Smith, John",222,S2,jsmith,Sec A,,
"Lee, Ann",333,S3,alee,Sec B,,
"Student, Test",999,,,Sec A,,
"""
CANVAS_HEADER = "Student,ID,SIS User ID,SIS Login ID,Section,Homework 2 (4455)"


@pytest.fixture(autouse=True)
def no_spec_folder_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADER_ASSIGNMENTS", raising=False)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture
def course(tmp_path: Path) -> dict[str, Path]:
    """A store as a run left it: jane met both targets (rank 1), john met A and submitted 30
    hours late, ann's code raised (inside her extension), and one graded student no roster has.
    """
    store = Store(tmp_path / "results" / "grades.sqlite")
    store.record(graded("doejane", 0.98))
    store.record(graded("smithjohn", 0.965))
    store.record(graded("leeann", 0.0, status="error", test_accuracy=None, targets={}))
    store.record(graded("nobody", 0.97))
    store.record(graded("anna", 0.99, kind="baseline"))  # a reference row: no student
    meta = {
        "doejane": {"lms_user_id": "12345", "submitted_at": "2026-09-14T21:59:00+00:00"},
        "smithjohn": {
            "lms_user_id": "222", "late": True, "submitted_at": "2026-09-16T05:59:00+00:00"
        },
        "leeann": {"lms_user_id": "333", "submitted_at": "2026-09-16T11:59:00+00:00"},
        "nobody": {"lms_user_id": "777"},
    }  # fmt: skip
    store.record_students(meta, "t")
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "roster.csv").write_text(CANVAS_ROSTER, encoding="utf-8")
    return {"store": store.path, "policy": tmp_path / "policy.toml", "root": tmp_path}


def gradebook(course: dict[str, Path], *args: str | Path) -> tuple[int, str, str]:
    result = invoke(
        "gradebook", "--store", course["store"], "--assignments", ASSIGNMENTS,
        "--assignment", "har", "--policy-file", course["policy"], *args,
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def test_canvas_fills_the_rosters_rows_with_penalty_extension_bonus_and_cap(
    course: dict[str, Path],
) -> None:
    out = course["root"] / "canvas.csv"
    code, stdout, stderr = gradebook(
        course, "--lms", "canvas", "--roster", course["root"] / "roster.csv",
        "--column", "Homework 2 (4455)", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert lines(out) == [
        CANVAS_HEADER,
        "Points Possible,,,,,11",
        '"Doe, Jane",12345,S1,jdoe,Sec A,11',  # 5 + 5 + a bonus of 2 for rank 1, capped at 11
        '"Smith, John",222,S2,jsmith,Sec A,4',  # 5, less 20% for two started days late
        '"Lee, Ann",333,S3,alee,Sec B,1',  # an error is worth 1; late, but inside her extension
        '"Student, Test",999,,,Sec A,0',  # no submission: the missing value
    ]
    assert stdout.splitlines() == [
        f"wrote {out}, column 'Homework 2 (4455)'",
        "in the roster, no submission (1): Student, Test",
        "graded but not in the file (1; no roster row or no LMS id to match): nobody",
        "4 rows: 1 error, 1 missing, 2 ok; 1 late",
    ]
    assert f"policy: {course['policy']}" in stderr


def test_moving_the_due_date_changes_the_penalty_without_regrading(
    course: dict[str, Path],
) -> None:
    out = course["root"] / "canvas.csv"
    args = ("--lms", "canvas", "--column", "Homework 2 (4455)", "--out", out)
    attempts = Store(course["store"]).attempts()
    assert gradebook(course, *args)[0] == 0
    assert "smithjohn,222,,,,4" in lines(out)  # 30 hours late: two started days, 20%
    # A day later: john is 6 hours late, one started day, 10% of 5.
    course["policy"].write_text(POLICY.replace(DUE, "2026-09-15T23:59:00+00:00"))
    assert gradebook(course, *args)[0] == 0
    assert "smithjohn,222,,,,4.5" in lines(out)
    # Later than he submitted: on time.
    course["policy"].write_text(POLICY.replace(DUE, "2026-09-16T23:59:00+00:00"))
    assert gradebook(course, *args)[0] == 0
    assert "smithjohn,222,,,,5" in lines(out)
    assert Store(course["store"]).attempts() == attempts  # nothing was graded again


def test_without_a_roster_canvas_gets_every_student_with_an_lms_id(
    course: dict[str, Path],
) -> None:
    out = course["root"] / "canvas.csv"
    code, stdout, _ = gradebook(course, "--lms", "canvas", "--out", out)
    assert code == 0
    assert lines(out) == [
        "Student,ID,SIS User ID,SIS Login ID,Section,har",
        "Points Possible,,,,,11",
        "doejane,12345,,,,11",
        "leeann,333,,,,1",
        "nobody,777,,,,5",
        "smithjohn,222,,,,4",
    ]
    assert "4 rows: 1 error, 3 ok; 1 late" in stdout


def test_moodle_is_keyed_by_id_number_and_email_from_its_grade_export(tmp_path: Path) -> None:
    store = Store(tmp_path / "grades.sqlite")
    store.record(graded("jane-doe", 0.98))
    store.record(graded("john-smith", 0.965))
    store.record_students(
        {"john-smith": {"late": True, "submitted_at": "2026-09-16T05:59:00+00:00"}}, "t"
    )
    (tmp_path / "policy.toml").write_text(POLICY)
    roster = tmp_path / "moodle.csv"
    roster.write_text(
        "First name,Last name,ID number,Institution,Department,Email address,"
        "Assignment: HAR homework (har) (Real),Last downloaded from this course\n"
        "Jane,Doe,S1,,,jane@example.edu,-,\n"
        "John,Smith,S2,,,john@example.edu,-,\n"
        "Ann,Lee,S3,,,ann@example.edu,-,\n"
    )
    out = tmp_path / "moodle-import.csv"
    course = {"store": store.path, "policy": tmp_path / "policy.toml"}
    code, stdout, stderr = gradebook(course, "--lms", "moodle", "--roster", roster, "--out", out)
    assert code == 0, stderr
    assert lines(out) == [
        "ID number,Email address,Assignment: HAR homework (har) (Real)",
        "S1,jane@example.edu,11",
        "S2,john@example.edu,4",
        "S3,ann@example.edu,0",
    ]
    assert "in the roster, no submission (1): Ann Lee" in stdout
    # Without the roster there is nothing to key the rows on.
    code, _, stderr = gradebook(course, "--lms", "moodle")
    assert code == 1
    assert stderr.splitlines()[-1].startswith(
        "Error: a Moodle gradebook needs the course's grade export (--roster)"
    )


def test_csv_has_a_row_per_student_with_the_parts_of_the_points(course: dict[str, Path]) -> None:
    out = course["root"] / "grades.csv"
    code, _, stderr = gradebook(course, "--lms", "csv", "--out", out)
    assert code == 0, stderr
    by_student = {r["student"]: r for r in rows(out)}
    assert list(by_student) == ["doejane", "leeann", "nobody", "smithjohn"]
    john = by_student["smithjohn"]
    assert {k: john[k] for k in ("points", "max", "status", "targets", "base", "bonus",
                                 "late_penalty", "late_hours")} == {
        "points": "4", "max": "11", "status": "ok", "targets": "5", "base": "0", "bonus": "0",
        "late_penalty": "1", "late_hours": "30",
    }  # fmt: skip
    assert (john["due"], john["submitted_at"]) == (DUE, "2026-09-16T05:59:00+00:00")
    ann = by_student["leeann"]
    assert (ann["status"], ann["base"], ann["late_hours"], ann["due"]) == (
        "error", "1", "", "2026-09-17T23:59:00+00:00")  # fmt: skip
    assert (by_student["doejane"]["bonus"], by_student["doejane"]["points"]) == ("2", "11")


def test_the_roster_column_is_found_or_asked_for(course: dict[str, Path]) -> None:
    code, _, stderr = gradebook(
        course, "--lms", "canvas", "--roster", course["root"] / "roster.csv"
    )
    assert code == 1
    assert stderr.splitlines()[-1] == (
        f"Error: {course['root'] / 'roster.csv'}: cannot tell the column of 'har' (named: none); "
        "pass --column"
    )
    code, _, stderr = gradebook(
        course, "--lms", "canvas", "--roster", course["root"] / "roster.csv", "--column", "HW9"
    )
    assert code == 1
    assert stderr.splitlines()[-1] == (
        f"Error: {course['root'] / 'roster.csv'}: no column 'HW9' for --column"
    )


# --- the policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("missing = -1", "key 'missing' must be a finite number, 0 or more"),
        ("[late]\nper = 'week'", "key 'late.per' must be 'day' or 'hour'"),
        ("[late]\ncap_percent = 150", "key 'late.cap_percent' must be at most 100"),
        ("[late]\npenalty_percent = true", "key 'late.penalty_percent' must be a number, not True"),
        ("[failed]\nbroken = 1", "key 'failed.broken' is not a known setting"),
        ("attempt = 'first'", "key 'attempt' must be 'latest' or 'best'"),
        (
            "[assignments.har]\ndue = 2026-09-14T23:59:00",
            "key 'assignments.har.due' must be a date-time with its offset, "
            "e.g. 2026-09-14T23:59:00Z",
        ),
        (
            "[assignments.har]\nbonus = [2, -1]",
            "key 'assignments.har.bonus[1]' must be a finite number, 0 or more",
        ),
        (
            "[assignments.har.extensions]\n'../x' = 2026-09-14T23:59:00Z",
            "key 'assignments.har.extensions.../x' is not a valid student id",
        ),
        (
            "[assignments.har]\ndeadline = 1",
            "key 'assignments.har.deadline' is not a known setting",
        ),
    ],
)
def test_invalid_policy_values_are_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value) == f"{path}: {message}"


def test_a_bad_policy_is_one_error_line_from_the_command(course: dict[str, Path]) -> None:
    course["policy"].write_text("[late]\nper = 'week'\n")
    code, stdout, stderr = gradebook(course, "--lms", "csv")
    assert (code, stdout) == (1, "")
    assert (
        stderr.splitlines()[-1]
        == f"Error: {course['policy']}: key 'late.per' must be 'day' or 'hour'"
    )


@pytest.mark.parametrize(
    ("late_by", "percent"),
    [
        (timedelta(minutes=15), 0.0),  # within the grace period
        (timedelta(minutes=16), 10.0),  # one started day
        (timedelta(days=1), 10.0),
        (timedelta(days=1, seconds=1), 20.0),
        (timedelta(days=9), 50.0),  # the cap
    ],
)
def test_the_penalty_counts_started_units_after_the_grace_period(
    late_by: timedelta, percent: float
) -> None:
    late = Late(grace=timedelta(minutes=15), penalty_percent=10, cap_percent=50)
    assert late.percent(late_by) == percent


def test_late_without_a_time_is_said_not_guessed(course: dict[str, Path]) -> None:
    policy = load_policy(course["policy"])
    got = points(graded("smithjohn", 0.965), HAR, policy, StudentMeta(late=True), rank=2)
    assert (got.points, got.late_penalty, got.late_hours) == (5.0, 0.0, None)
    assert got.note == "marked late without submitted_at: no penalty computed"


def test_without_a_policy_points_are_the_targets() -> None:
    got = points(graded("x", 0.965), HAR, GradingPolicy(), StudentMeta(), rank=1)
    assert (got.points, got.maximum) == (5.0, 10.0)


# --- end to end: an LMS export collected, graded, and its gradebook written -------------------

RAISES = GOOD_HAR.replace(
    "def build_model(input_shape, num_classes):",
    "def build_model(input_shape, num_classes):\n    raise RuntimeError('oops')",
)


def graded_course(tmp_path: Path, tiny_data_dir: Path, export: dict[str, str]) -> dict[str, Path]:
    """`grader collect` an export, then `grader run` it on the tiny data, with target A met by
    any model and target B by none, so each row's points are known."""
    course = write_course(tmp_path, tiny_data_dir)
    spec = course["assignments"] / "har.toml"
    spec.write_text(
        spec.read_text()
        .replace("min_test_accuracy = 0.96", "min_test_accuracy = 0.0")
        .replace("max_gap = 0.02", "max_gap = 1.0")
        .replace("min_test_accuracy = 0.975", "min_test_accuracy = 1.0")
    )
    zipped = tmp_path / "export.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for name, text in export.items():
            archive.writestr(name, text)
    submissions = tmp_path / "collected"
    collected = invoke(
        "collect", zipped, "--to", submissions, "--assignments", course["assignments"]
    )
    assert collected.exit_code == 0, collected.output
    course["submissions"] = submissions
    (tmp_path / "policy.toml").write_text(POLICY.replace("bonus = [2]\n", ""))
    course["policy"] = tmp_path / "policy.toml"
    return course


def run_and_export(course: dict[str, Path], *args: str | Path) -> tuple[int, str, str]:
    ran = invoke(
        "run", course["submissions"], "--out", course["out"], "--assignments",
        course["assignments"], "--data-dir", course["data"], "--cache-dir", course["cache"],
        "--workers", "1",
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    result = invoke(
        "gradebook", "--store", course["out"] / "grades.sqlite", "--assignments",
        course["assignments"], "--policy-file", course["policy"], *args,
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def submitted(folder: Path, when: str) -> None:
    """The submission time, which Canvas's download does not carry in its file names: the
    instructor adds it from the LMS (as `grader collect` keeps the rest)."""
    with (folder / "student.toml").open("a") as handle:
        handle.write(f'submitted_at = "{when}"\n')


@pytest.mark.slow
def test_a_canvas_export_collected_graded_and_exported(tmp_path: Path, tiny_data_dir: Path) -> None:
    export = {
        "doejane_12345_678_har.py": GOOD_HAR,
        # john uploaded twice, late: the first raised, the newest (har-1.py) trains.
        "smithjohn_LATE_222_680_har.py": RAISES,
        "smithjohn_LATE_222_690_har-1.py": GOOD_HAR,
        "leeann_LATE_333_682_har.py": RAISES,
    }
    course = graded_course(tmp_path, tiny_data_dir, export)
    submitted(course["submissions"] / "doejane", "2026-09-14T21:59:00+00:00")
    submitted(course["submissions"] / "smithjohn", "2026-09-16T05:59:00+00:00")
    submitted(course["submissions"] / "leeann", "2026-09-16T11:59:00+00:00")
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS_ROSTER, encoding="utf-8")
    out = tmp_path / "canvas.csv"
    code, stdout, stderr = run_and_export(
        course, "--lms", "canvas", "--roster", roster, "--column", "Homework 2 (4455)",
        "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert lines(out) == [
        CANVAS_HEADER,
        "Points Possible,,,,,11",
        '"Doe, Jane",12345,S1,jdoe,Sec A,5',  # target A
        '"Smith, John",222,S2,jsmith,Sec A,4',  # target A, less 20%: 30 hours late
        '"Lee, Ann",333,S3,alee,Sec B,1',  # an error; late, inside her extension
        '"Student, Test",999,,,Sec A,0',
    ]
    # Canvas marked ann late too; her extension makes her on time.
    assert stdout.splitlines()[-1] == "4 rows: 1 error, 1 missing, 2 ok; 1 late"
    # csv, from the same store: the parts.
    table = tmp_path / "grades.csv"
    code, _, stderr = run_and_export(course, "--lms", "csv", "--out", table)
    assert code == 0, stderr
    assert [(r["student"], r["points"], r["status"], r["late_hours"]) for r in rows(table)] == [
        ("doejane", "5", "ok", ""), ("leeann", "1", "error", ""), ("smithjohn", "4", "ok", "30"),
    ]  # fmt: skip


@pytest.mark.slow
def test_a_moodle_export_collected_graded_and_exported(tmp_path: Path, tiny_data_dir: Path) -> None:
    export = {
        "Jane Doe_501_assignsubmission_file_/har.py": GOOD_HAR,
        "John Smith_502_assignsubmission_file_/har.py": RAISES,
        "John Smith_502_assignsubmission_file_/har (1).py": GOOD_HAR,
    }
    course = graded_course(tmp_path, tiny_data_dir, export)
    submitted(course["submissions"] / "john-smith", "2026-09-15T00:30:00+00:00")
    roster = tmp_path / "moodle.csv"
    roster.write_text(
        "First name,Last name,ID number,Institution,Department,Email address,"
        "Assignment: har (Real),Last downloaded from this course\n"
        "Jane,Doe,S1,,,jane@example.edu,-,\n"
        "John,Smith,S2,,,john@example.edu,-,\n"
        "Ann,Lee,S3,,,ann@example.edu,-,\n"
    )
    out = tmp_path / "moodle-import.csv"
    code, stdout, stderr = run_and_export(
        course, "--lms", "moodle", "--roster", roster, "--out", out
    )
    assert code == 0, stderr
    assert lines(out) == [
        "ID number,Email address,Assignment: har (Real)",
        "S1,jane@example.edu,5",
        "S2,john@example.edu,4.5",  # 31 minutes late: one started day, 10%
        "S3,ann@example.edu,0",
    ]
    assert "in the roster, no submission (1): Ann Lee" in stdout


def test_the_courses_example_policy_loads_and_names_its_assignments() -> None:
    policy = load_policy(ASSIGNMENTS.parent / "policy.toml")
    assert set(policy.assignments) <= set(SPECS)
    assert policy.of("har").bonus == (1.0,) and policy.late.penalty_percent == 10


def test_the_policy_beside_the_specs_folder_is_used_and_said(course: dict[str, Path]) -> None:
    specs = course["root"] / "assignments"
    specs.mkdir()
    (specs / "har.toml").write_text((ASSIGNMENTS / "har.toml").read_text())
    result = invoke(
        "gradebook", "--store", course["store"], "--assignments", specs, "--lms", "canvas",
        "--out", course["root"] / "canvas.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"policy: {course['policy']}" in result.stderr
    assert lines(course["root"] / "canvas.csv")[1] == "Points Possible,,,,,11"
    course["policy"].unlink()
    result = invoke(
        "gradebook", "--store", course["store"], "--assignments", specs, "--lms", "canvas",
        "--out", course["root"] / "canvas.csv",
    )  # fmt: skip
    assert f"policy: none ({course['policy']} not found)" in result.stderr
    assert lines(course["root"] / "canvas.csv")[1] == "Points Possible,,,,,10"


def test_the_policy_picks_the_latest_or_the_best_attempt(course: dict[str, Path]) -> None:
    Store(course["store"]).record(graded("doejane", 0.5))  # a worse resubmission
    out = course["root"] / "canvas.csv"
    assert gradebook(course, "--lms", "canvas", "--out", out)[0] == 0
    assert "doejane,12345,,,,0" in lines(out)
    course["policy"].write_text('attempt = "best"\n' + POLICY)
    assert gradebook(course, "--lms", "canvas", "--out", out)[0] == 0
    assert "doejane,12345,,,,11" in lines(out)


def test_roster_cells_a_spreadsheet_would_run_are_written_inert(course: dict[str, Path]) -> None:
    roster = course["root"] / "roster.csv"
    roster.write_text(CANVAS_ROSTER.replace('"Lee, Ann"', '"=HYPERLINK(""http://x"")"'))
    out = course["root"] / "canvas.csv"
    code, _, stderr = gradebook(
        course, "--lms", "canvas", "--roster", roster, "--column", "Homework 2 (4455)", "--out", out
    )
    assert code == 0, stderr
    assert '"\'=HYPERLINK(""http://x"")",333,S3,alee,Sec B,1' in lines(out)
