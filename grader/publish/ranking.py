"""Ranking results into the leaderboard: one row per submission, one column per target.

Only students' graded rows are ranked. Failed rows follow with their status; reference rows
(baselines: any other kind) come last, unranked, for comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from grader.core.results import RANKING, Result
from grader.core.spec import Spec
from grader.core.submission import StudentMeta
from grader.store.sqlite import SimilarPair

LEADING = ["rank", "student", "assignment", "status", "test_accuracy", "train_accuracy", "gap"]
TRAILING = ["params", "epochs", "train_seconds", "mode", "seed", "message"]
EXTRA = ["threads", "weights_sha256", "finished_at", "kind", "late"]
# Graded on several seeds: the accuracies and gap above are means over these.
SEEDS = ["test_accuracy_std", "seeds"]
# The integrity audit's figures, and the hash an instructor names to clear a reviewed row.
AUDIT = ["agreement", "perturbed_drop", "holdout_accuracy", "holdout", "content_hash"]
# The instructor's board only: the students whose files copy detection found alike with this one.
SIMILAR = "similar_to"


def target_names(specs: Mapping[str, Spec]) -> list[str]:
    """Every target name of the specs, in the order the specs list them."""
    names: list[str] = []
    for name in sorted(specs):
        names += [t.name for t in specs[name].targets if t.name not in names]
    return names


def board_targets(results: Iterable[Result], targets: list[str] | None = None) -> list[str]:
    """The specs' target names, then any only the results name, alphabetically."""
    named = sorted({name for r in results for name in r.targets} - set(targets or []))
    return [*(targets or []), *named]


def target_column(name: str) -> str:
    return f"target_{name.lower()}"


def columns(targets: Iterable[str]) -> list[str]:
    return [*LEADING, *(target_column(t) for t in targets), *TRAILING, *EXTRA, *AUDIT, *SEEDS]


def similar_to(pairs: Iterable[SimilarPair]) -> dict[tuple[str, str, str], str]:
    """(assignment, student, content hash) -> the students copy detection found that file alike
    with, and how: "bob (code+errors); carol (identical)". Reviewed pairs are cleared."""
    named: dict[tuple[str, str, str], list[str]] = {}
    for pair in pairs:
        if pair.reviewed or pair.verdict == "none":
            continue
        sides = (
            (pair.student_a, pair.hash_a, pair.student_b),
            (pair.student_b, pair.hash_b, pair.student_a),
        )
        for student, content_hash, other in sides:
            named.setdefault((pair.assignment, student, content_hash), []).append(
                f"{other} ({pair.verdict})"
            )
    return {key: "; ".join(sorted(names)) for key, names in named.items()}


def ranked(
    results: Iterable[Result],
    targets: list[str] | None = None,
    meta: Mapping[str, StudentMeta] | None = None,
    similar: Mapping[tuple[str, str, str], str] | None = None,
) -> pd.DataFrame:
    """One row per result; within each assignment students' graded rows are ranked by test
    accuracy, then smaller gap, fewer parameters and student id; failed rows follow with no
    rank, then reference rows.

    `targets` orders the target columns (the specs' names); targets only the results name (from
    specs no longer at hand) follow in alphabetical order. `meta` gives the `late` column.
    `similar` (see similar_to), given for the instructor's board only, adds `similar_to`.
    """
    results = list(results)
    targets = board_targets(results, targets)
    rows = [_row(r, targets, (meta or {}).get(r.student)) for r in results]
    frame = pd.DataFrame(rows, columns=[*columns(targets), "_ok", "_reference"])
    if similar is not None:
        frame[SIMILAR] = [
            similar.get((r.assignment, r.student, r.content_hash), "") for r in results
        ]
    helpers = ["_ok", "_reference"]
    if frame.empty:
        return frame.drop(columns=helpers)
    frame = frame.sort_values(
        ["assignment", "_reference", "_ok", *(name for name, _ in RANKING), "student"],
        ascending=[True, True, False, *(not down for _, down in RANKING), True],
        na_position="last",
        kind="mergesort",
    )
    ranks = frame["_ok"] & ~frame["_reference"]
    frame["rank"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame.loc[ranks, "rank"] = frame[ranks].groupby("assignment").cumcount() + 1
    for column in ("params", "epochs", "seed", "threads"):
        frame[column] = frame[column].astype("Int64")
    frame["late"] = frame["late"].astype("boolean")
    return frame.drop(columns=helpers).reset_index(drop=True)


def _row(result: Result, targets: list[str], meta: StudentMeta | None) -> dict[str, object]:
    met = {target_column(name): result.targets.get(name) for name in targets}
    return {
        "rank": None,
        "student": result.student,
        "assignment": result.assignment,
        "status": str(result.status),
        "test_accuracy": _round(result.test_accuracy, 6),
        "train_accuracy": _round(result.train_accuracy, 6),
        "gap": _round(result.gap, 6),
        **{column: value if result.ok else None for column, value in met.items()},
        "params": result.params,
        "epochs": result.epochs,
        "train_seconds": _round(result.train_seconds, 2),
        "mode": str(result.mode),
        "seed": result.seed,
        "message": result.message,
        "threads": result.threads,
        "weights_sha256": result.weights_sha256,
        "finished_at": result.finished_at,
        "kind": result.kind,
        "late": None if meta is None or result.reference else meta.late,
        "agreement": _round(result.agreement, 6),
        "perturbed_drop": _round(result.perturbed_drop, 6),
        "holdout_accuracy": _round(result.holdout_accuracy, 6),
        "holdout": result.holdout,
        "content_hash": result.content_hash,
        "test_accuracy_std": _round(result.test_accuracy_std, 6),
        "seeds": ",".join(map(str, result.seeds)),
        "_ok": result.ok,
        "_reference": result.reference,
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
