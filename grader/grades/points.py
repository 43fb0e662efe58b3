"""A row of the store turned into points, with its parts, at export time.

Nothing here is stored: the late penalty comes from the student's `submitted_at` and the due
date in force when the gradebook is written, so a moved deadline or a new extension changes the
next export and regrades nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from grader.core.results import Result, Status
from grader.core.spec import Spec
from grader.core.submission import StudentMeta
from grader.grades.policy import GradingPolicy

MISSING = "missing"  # the status of a student with no row for the assignment


@dataclass(frozen=True)
class Points:
    student: str
    assignment: str
    status: str  # the row's status, or "missing"
    points: float  # what the gradebook gets: the parts, less the penalty, within the maximum
    maximum: float
    targets: float = 0.0  # the spec's points of the targets met
    base: float = 0.0  # the policy's points for a graded row, or for the failed status
    bonus: float = 0.0  # for a top rank
    late_penalty: float = 0.0
    late_hours: float | None = None  # None: not late, or not known
    due: str = ""  # the due date in force for this student ("" for none)
    submitted_at: str = ""
    note: str = ""  # why a part is not what one might expect

    @property
    def late(self) -> bool:
        return self.late_hours is not None


def maximum(spec: Spec, policy: GradingPolicy) -> float:
    """The assignment's points possible: the policy's max, else graded plus all targets."""
    own = policy.of(spec.name)
    if own.maximum is not None:
        return own.maximum
    return own.graded + sum(t.points for t in spec.targets)


def missing(student: str, spec: Spec, policy: GradingPolicy) -> Points:
    return Points(student, spec.name, MISSING, policy.missing, maximum(spec, policy))


def points(
    result: Result, spec: Spec, policy: GradingPolicy, meta: StudentMeta, rank: int | None
) -> Points:
    """The row's points: its parts, then the late penalty on their sum, within the maximum."""
    own = policy.of(spec.name)
    if result.status == Status.OK:
        targets = sum(t.points for t in spec.targets if result.targets.get(t.name))
        base = own.graded
        bonus = own.bonus[rank - 1] if rank is not None and rank <= len(own.bonus) else 0.0
    else:
        targets, base, bonus = 0.0, policy.failed_points(result.status), 0.0
    due = own.due_for(result.student)
    late_hours, percent, note = _lateness(due, meta, policy)
    earned = targets + base + bonus
    penalty = round(earned * percent / 100, 2)
    return Points(
        student=result.student,
        assignment=spec.name,
        status=str(result.status),
        points=round(min(maximum(spec, policy), earned - penalty), 2),
        maximum=maximum(spec, policy),
        targets=targets,
        base=base,
        bonus=bonus,
        late_penalty=penalty,
        late_hours=late_hours,
        due=due.isoformat() if due else "",
        submitted_at=meta.submitted_at or "",
        note=note,
    )


def _lateness(
    due: datetime | None, meta: StudentMeta, policy: GradingPolicy
) -> tuple[float | None, float, str]:
    """Hours late (None when on time or unknown), the penalty in percent, and a note."""
    if due is None:
        return None, 0.0, ""
    if meta.submitted_at is None:
        if meta.late:
            return None, 0.0, "marked late without submitted_at: no penalty computed"
        return None, 0.0, ""
    submitted = datetime.fromisoformat(meta.submitted_at)
    if submitted.tzinfo is None:  # the LMS's exports give UTC
        submitted = submitted.replace(tzinfo=UTC)
    late_by = submitted - due
    if late_by.total_seconds() <= 0:
        return None, 0.0, ""
    return round(late_by.total_seconds() / 3600, 2), policy.late.percent(late_by), ""
