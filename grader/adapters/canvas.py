"""`grader canvas-push`: the scores of a Canvas gradebook import file pushed to one assignment
with canvasapi (`pip install 'course-grader[canvas]'`). The one module that talks to Canvas.

The file is Canvas's gradebook import CSV (what `grader gradebook --lms canvas` writes): a header
`Student,ID,SIS User ID,SIS Login ID,Section,<assignment name> (<assignment id>),...`, then a
`Points Possible` row, then a row per student whose `ID` is Canvas's user id. The column pushed
is the one whose header ends with `(<assignment id>)`. Canvas's current scores are read first,
so what changes is said (old -> new) and unchanged scores are not sent; a dry run stops there.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grader.core.errors import UserError
from grader.core.text import one_line, printable

USER_ID = "ID"  # Canvas's user id column in its gradebook files
POINTS_POSSIBLE = "Points Possible"
MESSAGE_CHARS = 200
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}  # plain http is let through only to these
INSTALL = "pip install 'course-grader[canvas]'"


class CanvasError(UserError):
    """Canvas cannot be reached, refuses the token, or lacks the course or assignment."""


@dataclass(frozen=True)
class PushOptions:
    gradebook: Path
    url: str  # the Canvas instance, e.g. https://canvas.example.edu
    course_id: int
    assignment_id: int
    token: str
    dry_run: bool = False


@dataclass(frozen=True)
class Score:
    """One student's row of the gradebook file."""

    user_id: int
    name: str  # as the file says, made printable: it is shown on the terminal
    points: float


@dataclass(frozen=True)
class Change:
    score: Score
    old: float | None  # Canvas's score now; None: not graded yet


@dataclass(frozen=True)
class PushReport:
    assignment: str  # Canvas's name for it, printable
    changes: list[Change]
    unchanged: int
    blank: int  # rows with no score in the file: left as Canvas has them
    not_in_course: list[Score] = field(default_factory=list)  # ids Canvas has no submission for
    progress_url: str = ""  # where Canvas reports the bulk update's progress; "" in a dry run


def push(options: PushOptions) -> PushReport:
    """Compare the file's scores with Canvas's, and unless a dry run, send those that differ."""
    scores, blank = read_gradebook(options.gradebook, options.assignment_id)
    assignment = _assignment(options)
    current = _current_scores(options, assignment)
    changes = [Change(s, current[s.user_id]) for s in scores if _differs(s, current)]
    missing = [s for s in scores if s.user_id not in current]
    report = PushReport(
        printable(str(getattr(assignment, "name", options.assignment_id))),
        changes,
        unchanged=len(scores) - len(changes) - len(missing),
        blank=blank,
        not_in_course=missing,
    )
    if options.dry_run or not changes:
        return report
    grades = {str(c.score.user_id): {"posted_grade": f"{c.score.points:g}"} for c in changes}
    progress = _call(options, lambda: assignment.submissions_bulk_update(grade_data=grades))
    return replace(report, progress_url=str(getattr(progress, "url", "")))


def read_gradebook(path: Path, assignment_id: int) -> tuple[list[Score], int]:
    """The scores in the assignment's column, one per student, and how many rows are blank."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not rows:
        raise UserError(f"{path} is empty; expected Canvas's gradebook import CSV")
    header = rows[0]
    column = _column(header, assignment_id, path)
    if USER_ID not in header:
        raise UserError(f"{path}: no {USER_ID!r} column (Canvas's user id) in the header")
    ids = header.index(USER_ID)
    scores, blank = [], 0
    for line, row in enumerate(rows[1:], start=2):
        cells = row + [""] * (len(header) - len(row))
        if cells[0].strip() == POINTS_POSSIBLE:
            continue
        if not cells[column].strip():
            blank += 1
            continue
        scores.append(_score(cells, ids, column, f"{path} line {line}"))
    return scores, blank


def _column(header: list[str], assignment_id: int, path: Path) -> int:
    ending = re.compile(rf"\(\s*{assignment_id}\s*\)\s*$")
    found = [index for index, name in enumerate(header) if ending.search(name)]
    if len(found) != 1:
        said = "no column" if not found else "several columns"
        raise UserError(
            f"{path}: {said} for assignment {assignment_id} (a header ending "
            f"'({assignment_id})', as in 'Homework 2 ({assignment_id})')"
        )
    return found[0]


def _score(cells: list[str], ids: int, column: int, where: str) -> Score:
    user_id, points = cells[ids].strip(), cells[column].strip()
    if not user_id.isdigit():
        raise UserError(f"{where}: {printable(user_id)!r} is not a Canvas user id")
    try:
        value = float(points)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"{where}: score {printable(points)!r} is not a number")
    return Score(int(user_id), printable(cells[0]), value)


def _differs(score: Score, current: dict[int, float | None]) -> bool:
    if score.user_id not in current:
        return False
    old = current[score.user_id]
    return old is None or not math.isclose(old, score.points, abs_tol=1e-9)


def _assignment(options: PushOptions) -> Any:
    """canvasapi's Assignment, after checking the URL and the token's access to the course."""
    canvas_class = _canvasapi()
    _check_url(options.url)
    with warnings.catch_warnings():  # canvasapi warns of http, which _check_url has allowed
        warnings.simplefilter("ignore")
        canvas = canvas_class(options.url, options.token)
    course = _call(options, lambda: canvas.get_course(options.course_id))
    return _call(options, lambda: course.get_assignment(options.assignment_id))


def _current_scores(options: PushOptions, assignment: Any) -> dict[int, float | None]:
    """Every student's score now, by user id (Canvas keeps a submission for each student)."""
    submissions = _call(options, lambda: list(assignment.get_submissions()))
    return {int(s.user_id): getattr(s, "score", None) for s in submissions}


def _canvasapi() -> Any:
    try:
        from canvasapi import Canvas
    except ImportError:
        raise UserError(f"pushing grades to Canvas needs canvasapi: {INSTALL}") from None
    return Canvas


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)
    if not secure or not parts.hostname or "api/v1" in parts.path:
        raise UserError(
            f"--url {url!r}: expected the Canvas instance's https address, such as "
            "https://canvas.example.edu (no /api/v1; plain http only to localhost)"
        )


def _call(options: PushOptions, call: Callable[[], Any]) -> Any:
    """call(), with what Canvas refuses said in one line naming the course and assignment."""
    from canvasapi.exceptions import (
        CanvasException,
        Forbidden,
        InvalidAccessToken,
        ResourceDoesNotExist,
        Unauthorized,
    )
    from requests import RequestException

    where = f"course {options.course_id}, assignment {options.assignment_id}"
    try:
        return call()
    except (InvalidAccessToken, Unauthorized):
        raise CanvasError(f"Canvas at {options.url} refused the access token") from None
    except Forbidden:
        raise CanvasError(f"the access token may not grade {where}") from None
    except ResourceDoesNotExist:
        raise CanvasError(f"Canvas has no {where} (or the token cannot see it)") from None
    except CanvasException as exc:
        said = one_line(str(exc), MESSAGE_CHARS)
        raise CanvasError(f"Canvas refused a request for {where}: {said}") from None
    except RequestException as exc:
        said = f"{type(exc).__name__}"
        raise CanvasError(f"cannot reach Canvas at {options.url} ({said})") from None
