"""Gradebook files in the LMSs' own import formats, from points computed at export.

- canvas: Canvas's gradebook import CSV. The header is `Student,ID,SIS User ID,SIS Login
  ID,Section,<Assignment name (assignment id)>`, the second row `Points Possible`; Canvas
  matches rows on ID, its user id, which `grader collect` keeps as `lms_user_id`. Given the
  course's own gradebook export (--roster), every roster row is written, in its order, with
  its identity cells, and the one assignment column filled.
- moodle: Moodle's grade import CSV, from the course's grade export (the roster): `ID
  number,Email address,<column>`, one row per roster row, matched by the student id that
  `grader collect` derives from the same full name.
- csv: one row per student and assignment, with the points' parts.

Cells are written with the standard csv module; a text cell a spreadsheet would run as a
formula gets a leading apostrophe, as on the leaderboard.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grader.adapters.collect import student_id
from grader.core.errors import UserError
from grader.core.files import atomic_path
from grader.grades.points import MISSING, Points
from grader.publish.export import inert_cell

CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "Points Possible"
MOODLE_NAME = ("First name", "Last name")
MOODLE_KEYS = ("ID number", "Email address")
TABLE = (
    "student", "assignment", "points", "max", "status", "targets", "base", "bonus",
    "late_penalty", "late_hours", "due", "submitted_at", "note",
)  # fmt: skip


class RosterError(UserError):
    """The roster cannot be read, or is not the LMS's gradebook export."""


@dataclass
class Written:
    """What a gradebook file holds, for the terminal."""

    path: Path
    column: str = ""
    points: list[Points] = field(default_factory=list)  # every student row written
    roster_only: list[str] = field(default_factory=list)  # in the roster, no submission
    unmatched: list[str] = field(default_factory=list)  # graded, not written: no match


@dataclass(frozen=True)
class Roster:
    header: list[str]
    rows: list[list[str]]
    path: Path

    def index(self, name: str) -> int:
        if name not in self.header:
            raise RosterError(f"{self.path}: no column {name!r} (is it the LMS's export?)")
        return self.header.index(name)


def read_roster(path: Path) -> Roster:
    """An LMS's exported gradebook CSV (Canvas and Moodle write UTF-8, often with a BOM)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RosterError(f"{path}: cannot read the roster ({exc})") from None
    if not rows:
        raise RosterError(f"{path}: the roster is empty")
    width = len(rows[0])
    return Roster(rows[0], [row + [""] * (width - len(row)) for row in rows[1:]], path)


def column_for(assignment: str, asked: str | None, roster: Roster | None, skip: int) -> str:
    """The assignment's column: the one asked for (which a roster must have), else the
    roster's one column naming the assignment, else the assignment's name."""
    if asked is not None:
        if roster is not None and asked not in roster.header:
            raise RosterError(f"{roster.path}: no column {asked!r} for --column")
        return asked
    if roster is None:
        return assignment
    word = re.compile(rf"\b{re.escape(assignment)}\b", re.I)
    named = [c for c in roster.header[skip:] if word.search(c)]
    if len(named) != 1:
        found = "none" if not named else ", ".join(named)
        raise RosterError(
            f"{roster.path}: cannot tell the column of {assignment!r} (named: {found}); "
            "pass --column"
        )
    return named[0]


def write_canvas(
    out: Path,
    grades: Mapping[str, Points],
    lms_ids: Mapping[str, str],
    column: str,
    missing: Points,
    roster: Roster | None,
) -> Written:
    """Canvas's gradebook import file for one assignment."""
    written = Written(out, column)
    header = [*CANVAS_IDENTITY, column]
    possible = [POINTS_POSSIBLE, "", "", "", "", _number(missing.maximum)]
    rows: list[list[str]] = []
    by_id = {lms_ids[s]: s for s in grades if s in lms_ids}
    if roster is None:
        for student, got in sorted(grades.items()):
            if student not in lms_ids:
                written.unmatched.append(student)
                continue
            rows.append([student, lms_ids[student], "", "", "", _number(got.points)])
            written.points.append(got)
    else:
        cells = [roster.index(name) for name in CANVAS_IDENTITY]
        seen = set()
        for row in roster.rows:
            identity = [row[i] for i in cells]
            if identity[0].strip() == POINTS_POSSIBLE:
                continue  # ours replaces it, with this assignment's maximum
            match = by_id.get(identity[1])
            got = grades[match] if match else missing
            if match:
                seen.add(match)
            else:
                written.roster_only.append(identity[0])
            rows.append([*identity, _number(got.points)])
            written.points.append(got)
        written.unmatched = sorted(s for s in grades if s not in seen and _submitted(grades[s]))
    _write(out, [header, possible, *rows])
    return written


def write_moodle(
    out: Path, grades: Mapping[str, Points], column: str, missing: Points, roster: Roster
) -> Written:
    """Moodle's grade import file for one assignment: a row per roster row, keyed by ID
    number and email address."""
    written = Written(out, column)
    first, last = (roster.index(name) for name in MOODLE_NAME)
    keys = [roster.index(name) for name in MOODLE_KEYS]
    rows = []
    seen = set()
    for row in roster.rows:
        student = student_id(f"{row[first]} {row[last]}")
        got = grades.get(student) if student else None
        if got is None or student is None:
            written.roster_only.append(f"{row[first]} {row[last]}")
            got = missing
        else:
            seen.add(student)
        rows.append([*(row[i] for i in keys), _number(got.points)])
        written.points.append(got)
    written.unmatched = sorted(s for s in grades if s not in seen and _submitted(grades[s]))
    _write(out, [[*MOODLE_KEYS, column], *rows])
    return written


def write_table(out: Path, grades: Iterable[Points]) -> Written:
    """One row per student and assignment, with the parts of the points."""
    written = Written(out, points=list(grades))
    rows = [
        [
            p.student, p.assignment, _number(p.points), _number(p.maximum), p.status,
            _number(p.targets), _number(p.base), _number(p.bonus), _number(p.late_penalty),
            "" if p.late_hours is None else _number(p.late_hours), p.due, p.submitted_at, p.note,
        ]
        for p in written.points
    ]  # fmt: skip
    _write(out, [list(TABLE), *rows])
    return written


def _submitted(points: Points) -> bool:
    return points.status != MISSING


def _number(value: float) -> str:
    """9.5, 10 (not 10.0), 0.25: as a person would type it into the gradebook."""
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".")


def _write(out: Path, rows: list[list[str]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temp, temp.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([[inert_cell(cell) for cell in row] for row in rows])
