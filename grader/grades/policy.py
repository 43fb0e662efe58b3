"""`course/policy.toml`: how a graded row becomes points, and the late policy.

Points for the targets are the spec's (`[[targets]] points`); the policy adds the rest: points
for any graded (ok) submission, points per failed status, a bonus for the top ranks, the
maximum, the missing value, and the late policy with its per-student extensions. Due dates
live here, never in the store: the penalty is computed at export from `submitted_at` and the
due date in force then, so moving a deadline needs no regrading.

    attempt = "latest"          # or "best": which attempt stands for a student
    missing = 0                 # points for a student with no submission

    [failed]                    # points by status of a row that was not graded ok
    default = 0
    invalid = 1

    [late]
    grace_minutes = 15          # lateness within the grace period costs nothing
    per = "day"                 # or "hour": the penalty is charged per started day (hour)
    penalty_percent = 10        # of the points, per day (hour) late
    cap_percent = 50            # the most lateness can cost

    [assignments.har]
    due = 2026-09-14T23:59:00+00:00
    graded = 0                  # points for a graded (ok) submission, beside the targets'
    max = 10                    # the cap, and Canvas's "Points Possible" (default: the sum)
    bonus = [2, 1]              # extra points for ranks 1 and 2 on the board

    [assignments.har.extensions]
    ben = 2026-09-16T23:59:00+00:00   # ben's own due date
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from grader.core.errors import UserError
from grader.core.results import Policy as Attempt
from grader.core.results import Status
from grader.core.submission import STUDENT_ID

POLICY_FILE = "policy.toml"  # beside the specs folder: course/policy.toml
UNITS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}


class PolicyError(UserError):
    """The policy file is unreadable or holds an invalid value; the message names file and key."""


@dataclass(frozen=True)
class Late:
    grace: timedelta = timedelta(0)
    unit: timedelta = UNITS["day"]
    penalty_percent: float = 0.0  # of the points, per started unit late
    cap_percent: float = 100.0

    def percent(self, late_by: timedelta) -> float:
        """What lateness costs, in percent of the points: nothing within the grace period,
        else the penalty per started unit, up to the cap."""
        if late_by <= self.grace:
            return 0.0
        units = math.ceil(late_by / self.unit)
        return min(self.cap_percent, units * self.penalty_percent)


@dataclass(frozen=True)
class AssignmentPolicy:
    due: datetime | None = None  # None: no deadline, nothing is late
    graded: float = 0.0  # points for a graded (ok) submission, beside its targets'
    maximum: float | None = None  # None: graded points plus every target's
    bonus: tuple[float, ...] = ()  # by rank: the first for rank 1, ...
    extensions: Mapping[str, datetime] = field(default_factory=dict)  # student → own due date

    def due_for(self, student: str) -> datetime | None:
        return self.extensions.get(student, self.due)


@dataclass(frozen=True)
class GradingPolicy:
    attempt: Attempt = Attempt.LATEST
    missing: float = 0.0
    failed: Mapping[str, float] = field(default_factory=dict)  # status → points
    failed_default: float = 0.0
    late: Late = field(default_factory=Late)
    assignments: Mapping[str, AssignmentPolicy] = field(default_factory=dict)

    def of(self, assignment: str) -> AssignmentPolicy:
        return self.assignments.get(assignment, AssignmentPolicy())

    def failed_points(self, status: str) -> float:
        return self.failed.get(status, self.failed_default)


def load_policy(path: Path) -> GradingPolicy:
    """Read and validate a policy file; any problem is one PolicyError naming file and key."""
    try:
        document = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    read = _Reader(path)
    read.keys(document, {"attempt", "missing", "failed", "late", "assignments"}, "")
    attempt = document.get("attempt", Attempt.LATEST.value)
    if attempt not in {a.value for a in Attempt}:
        raise read.fail("attempt", "must be 'latest' or 'best'")
    failed = read.table(document, "failed")
    statuses = {s.value for s in Status} - {Status.OK.value}
    read.keys(failed, statuses | {"default"}, "failed.")
    assignments = read.table(document, "assignments")
    return GradingPolicy(
        attempt=Attempt(attempt),
        missing=read.points(document, "missing", "missing"),
        failed={s: read.points(failed, s, f"failed.{s}") for s in failed if s != "default"},
        failed_default=read.points(failed, "default", "failed.default"),
        late=_late(read, read.table(document, "late")),
        assignments={
            name: _assignment(read, table, f"assignments.{name}")
            for name, table in assignments.items()
        },
    )


def _late(read: _Reader, table: dict[str, Any]) -> Late:
    read.keys(table, {"grace_minutes", "per", "penalty_percent", "cap_percent"}, "late.")
    per = table.get("per", "day")
    if per not in UNITS:
        raise read.fail("late.per", "must be 'day' or 'hour'")
    cap = read.points(table, "cap_percent", "late.cap_percent", default=100.0)
    if cap > 100:
        raise read.fail("late.cap_percent", "must be at most 100")
    return Late(
        grace=timedelta(minutes=read.points(table, "grace_minutes", "late.grace_minutes")),
        unit=UNITS[per],
        penalty_percent=read.points(table, "penalty_percent", "late.penalty_percent"),
        cap_percent=cap,
    )


def _assignment(read: _Reader, table: Any, key: str) -> AssignmentPolicy:
    if not isinstance(table, dict):
        raise read.fail(key, "must be a table")
    read.keys(table, {"due", "graded", "max", "bonus", "extensions"}, key + ".")
    bonus = table.get("bonus", [])
    if not isinstance(bonus, list):
        raise read.fail(f"{key}.bonus", "must be an array of points, for ranks 1, 2, ...")
    extensions = read.table(table, "extensions", key + ".")
    for student in extensions:
        if not STUDENT_ID.fullmatch(student):
            raise read.fail(f"{key}.extensions.{student}", "is not a valid student id")
    return AssignmentPolicy(
        due=read.time(table["due"], f"{key}.due") if "due" in table else None,
        graded=read.points(table, "graded", f"{key}.graded"),
        maximum=read.points(table, "max", f"{key}.max") if "max" in table else None,
        bonus=tuple(read.number(b, f"{key}.bonus[{i}]") for i, b in enumerate(bonus)),
        extensions={s: read.time(t, f"{key}.extensions.{s}") for s, t in extensions.items()},
    )


@dataclass(frozen=True)
class _Reader:
    path: Path

    def fail(self, key: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.path}: key '{key}' {problem}")

    def keys(self, table: dict[str, Any], allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(prefix + key, "is not a known setting")

    def table(self, parent: dict[str, Any], name: str, prefix: str = "") -> dict[str, Any]:
        value = parent.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(prefix + name, "must be a table")
        return value

    def points(self, table: dict[str, Any], name: str, key: str, default: float = 0.0) -> float:
        return self.number(table.get(name, default), key)

    def number(self, value: Any, key: str) -> float:
        """A finite number, 0 or more."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, not {value!r}")
        if not math.isfinite(value) or value < 0:
            raise self.fail(key, "must be a finite number, 0 or more")
        return float(value)

    def time(self, value: Any, key: str) -> datetime:
        """An offset date-time (TOML's 2026-09-14T23:59:00+02:00): a deadline without its time
        zone would move with the machine that exports."""
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise self.fail(key, "must be a date-time with its offset, e.g. 2026-09-14T23:59:00Z")
        return value
