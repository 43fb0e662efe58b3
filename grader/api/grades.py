"""`grader gradebook`: the store's rows as points, written in an LMS's import format.

Points are computed here, at export, from the rows, the students' metadata and the policy
in force now; nothing of them is stored, so a moved due date changes the next export alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from grader.adapters.lms import (
    CANVAS_IDENTITY,
    Roster,
    Written,
    column_for,
    read_roster,
    write_canvas,
    write_moodle,
    write_table,
)
from grader.api.common import Log, find_specs
from grader.core.errors import UserError
from grader.core.results import STUDENT, Result
from grader.core.spec import Spec, SpecsAsked, load_specs, pick_spec
from grader.core.submission import StudentMeta
from grader.grades.points import Points, missing, points
from grader.grades.policy import POLICY_FILE, GradingPolicy, load_policy
from grader.publish.ranking import ranked
from grader.store.sqlite import DB_NAME, Store

LMS = ("canvas", "moodle", "csv")


@dataclass(frozen=True)
class GradebookOptions:
    lms: str  # canvas, moodle or csv
    store: Path = Path("results") / DB_NAME
    out: Path | None = None  # default: gradebook-<lms>.csv beside the store
    assignment: str | None = None  # canvas and moodle: the one assignment (needed if several)
    column: str | None = None  # the assignment's column; default: the roster's, else its name
    roster: Path | None = None  # the LMS's own gradebook export
    policy: Path | None = None  # default: policy.toml beside the specs folder, if there
    specs: SpecsAsked = field(default_factory=SpecsAsked)


@dataclass(frozen=True)
class Gradebook:
    written: Written
    counts: dict[str, int]  # by status ("ok", "error", ..., "missing"), and "late"


def gradebook(options: GradebookOptions, log: Log) -> Gradebook:
    """Write the gradebook file; say which specs and policy made it."""
    if options.lms not in LMS:
        raise UserError(f"unknown LMS {options.lms!r} (known: {', '.join(LMS)})")
    store = Store(options.store, create=False)
    folder = find_specs(options.specs, options.store.parent, log)
    specs = load_specs(folder)
    policy = _policy(options.policy, folder, log)
    chosen = _assignments(specs, options)
    results = [
        r
        for r in store.standing(policy.attempt)
        if r.kind == STUDENT and r.assignment in {s.name for s in chosen}
    ]
    meta = {s: StudentMeta.from_dict(m) for s, m in store.students().items()}
    grades = _points(chosen, results, meta, policy)
    out = options.out or options.store.parent / f"gradebook-{options.lms}.csv"
    roster = read_roster(options.roster) if options.roster else None
    written = _write(options, out, chosen, grades, meta, policy, roster)
    counts = Counter(p.status for p in written.points)
    counts["late"] = sum(p.late for p in written.points)
    return Gradebook(written, dict(counts))


def _policy(asked: Path | None, specs: Path, log: Log) -> GradingPolicy:
    path = asked or specs.parent / POLICY_FILE
    if asked is None and not path.is_file():
        log(f"policy: none ({path} not found): no due dates, no penalty, 0 for failed rows")
        return GradingPolicy()
    log(f"policy: {path}")
    return load_policy(path)


def _assignments(specs: dict[str, Spec], options: GradebookOptions) -> list[Spec]:
    """csv: every assignment, or the one asked for; an LMS file holds one."""
    if options.assignment is not None:
        return [pick_spec(specs, options.assignment)]
    if options.lms == "csv":
        return [specs[name] for name in sorted(specs)]
    if len(specs) > 1:
        raise UserError(
            f"a {options.lms} gradebook holds one assignment: pass --assignment "
            f"({', '.join(sorted(specs))})"
        )
    return list(specs.values())


def _points(
    specs: list[Spec],
    results: list[Result],
    meta: dict[str, StudentMeta],
    policy: GradingPolicy,
) -> dict[str, dict[str, Points]]:
    """By assignment, by student: every student the store knows, missing where no row."""
    frame = ranked(results).dropna(subset=["rank"])
    ranks = {
        (a, s): int(r)
        for a, s, r in zip(frame.assignment, frame.student, frame["rank"], strict=True)
    }
    students = set(meta) | {r.student for r in results}
    rows = {(r.assignment, r.student): r for r in results}
    grades: dict[str, dict[str, Points]] = {}
    for spec in specs:
        grades[spec.name] = {}
        for student in sorted(students):
            row = rows.get((spec.name, student))
            rank = ranks.get((spec.name, student))
            own = meta.get(student, StudentMeta())
            grades[spec.name][student] = (
                points(row, spec, policy, own, rank) if row else missing(student, spec, policy)
            )
    return grades


def _write(
    options: GradebookOptions,
    out: Path,
    specs: list[Spec],
    grades: dict[str, dict[str, Points]],
    meta: dict[str, StudentMeta],
    policy: GradingPolicy,
    roster: Roster | None,
) -> Written:
    if options.lms == "csv":
        return write_table(out, [p for spec in specs for p in grades[spec.name].values()])
    (spec,) = specs
    none = missing("", spec, policy)
    if options.lms == "canvas":
        column = column_for(spec.name, options.column, roster, len(CANVAS_IDENTITY))
        ids = {s: m.lms_user_id for s, m in meta.items() if m.lms_user_id}
        return write_canvas(out, grades[spec.name], ids, column, none, roster)
    if roster is None:
        raise UserError(
            "a Moodle gradebook needs the course's grade export (--roster): Moodle's import "
            "matches on ID number or email address, which only the roster has"
        )
    column = column_for(spec.name, options.column, roster, 0)
    return write_moodle(out, grades[spec.name], column, none, roster)
