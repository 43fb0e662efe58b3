"""Every pair of students in an assignment, with both signals and a verdict for a person.

A verdict is a signal to review, never a penalty: `identical` files (the same content hash),
`code` shared beyond the starter, `errors` made alike far past honest models, or both. A pair
an instructor reviewed (course/reviewed.toml) keeps its figures and verdict but is cleared:
it is named on no board.

The starter is taken out of both signals. Out of the code, as copydetect's boilerplate; out
of the mistakes, by the starter's own model (a reference): two students who each handed in
the starter with a line changed that does not change what it learns (a softmax left off, a
loss named differently) train the starter's model, and make its mistakes, whoever wrote what.
Their likeness is explained when each is, within EXPLAINED_BY, as alike with the reference as
with the other.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from grader.core.review import PairKey
from grader.core.spec import Similarity
from grader.similarity import behaviour, code

# About two standard errors of a kappa measured on a few hundred mistakes.
EXPLAINED_BY = 0.05
Predictions = dict[int, np.ndarray]  # a model's predicted test classes by seed


class Verdict(StrEnum):
    """In the order a reviewer reads them: the strongest signal first."""

    IDENTICAL = "identical"
    CODE_ERRORS = "code+errors"
    CODE = "code"
    ERRORS = "errors"
    NONE = "none"


@dataclass(frozen=True)
class Entry:
    """One student's submission to an assignment: its file and, if graded, its model's test
    predictions by seed (empty: compared by code alone)."""

    student: str
    content_hash: str
    source: code.Source
    predictions: Predictions


@dataclass(frozen=True)
class Pair:
    assignment: str
    a: Entry
    b: Entry
    code: code.Match
    behaviour: behaviour.Behaviour | None  # None: one of them has no graded model
    verdict: Verdict
    reviewed: bool = False
    # Alike in their mistakes past the threshold, but as alike with the starter's model.
    explained: bool = False

    @property
    def signal(self) -> bool:
        """A pair a person should look at: a verdict, not cleared by review."""
        return self.verdict is not Verdict.NONE and not self.reviewed


def pairs(
    assignment: str,
    entries: Iterable[Entry],
    labels: np.ndarray,
    limits: Similarity,
    reviewed: frozenset[PairKey] = frozenset(),
    references: Sequence[Predictions] = (),
) -> list[Pair]:
    """Every pair of the entries (one per student), strongest signal first; references: the
    base files' models, which explain the likeness of models alike with them."""
    entries = sorted(entries, key=lambda e: e.student)
    closeness = {e.student: [kappa(e.predictions, r, labels) for r in references] for e in entries}
    found = []
    for a, b in itertools.combinations(entries, 2):
        seen = behaviour.compare(a.predictions, b.predictions, labels)
        near = explained(seen, closeness[a.student], closeness[b.student])
        found.append(_pair(assignment, a, b, seen, near, limits, reviewed))
    return sorted(found, key=_order)


def alike(seen: behaviour.Behaviour | None, limits: Similarity) -> bool:
    """Mistakes alike past the threshold (before any reference is asked)."""
    consistency = None if seen is None else seen.error_consistency
    return consistency is not None and consistency >= limits.min_error_consistency


def verdict(
    match: code.Match,
    seen: behaviour.Behaviour | None,
    limits: Similarity,
    explained: bool = False,
) -> Verdict:
    shared = match.similarity >= limits.min_code_similarity and match.overlap >= limits.min_overlap
    mistakes = alike(seen, limits) and not explained
    if shared and mistakes:
        return Verdict.CODE_ERRORS
    if shared:
        return Verdict.CODE
    return Verdict.ERRORS if mistakes else Verdict.NONE


def _pair(
    assignment: str,
    a: Entry,
    b: Entry,
    seen: behaviour.Behaviour | None,
    explained: bool,
    limits: Similarity,
    reviewed: frozenset[PairKey],
) -> Pair:
    match = code.compare(a.source, b.source)
    same = bool(a.content_hash) and a.content_hash == b.content_hash
    said = Verdict.IDENTICAL if same else verdict(match, seen, limits, explained)
    cleared = (a.student, a.content_hash, b.student, b.content_hash) in reviewed
    return Pair(assignment, a, b, match, seen, said, cleared, explained and alike(seen, limits))


def kappa(a: Predictions, b: Predictions, labels: np.ndarray) -> float | None:
    """Two models' error consistency over the seeds both have; None where there is none."""
    seen = behaviour.compare(a, b, labels)
    return None if seen is None else seen.error_consistency


def explained(
    seen: behaviour.Behaviour | None, a: list[float | None], b: list[float | None]
) -> bool:
    """Each model of the pair as alike with some reference as with the other, or more."""
    if seen is None or seen.error_consistency is None:
        return False
    least = seen.error_consistency - EXPLAINED_BY
    return any(
        x is not None and y is not None and min(x, y) >= least for x, y in zip(a, b, strict=True)
    )


def _order(pair: Pair) -> tuple[bool, int, float, str, str]:
    consistency = pair.behaviour.error_consistency if pair.behaviour else None
    strongest = max(pair.code.similarity, consistency or 0.0)
    rank = list(Verdict).index(pair.verdict)
    return (pair.reviewed, rank, -strongest, pair.a.student, pair.b.student)
