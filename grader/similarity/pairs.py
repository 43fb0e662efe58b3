"""Every pair of students in an assignment, with both signals and a verdict for a person.

A verdict is a signal to review, never a penalty: `identical` files (the same content hash),
`code` shared beyond the starter, `errors` made alike far past honest models, or both. A pair
an instructor reviewed (course/reviewed.toml) keeps its figures and verdict but is cleared:
it is named on no board.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from grader.core.spec import Similarity
from grader.similarity import behaviour, code


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
    predictions: dict[int, np.ndarray]


@dataclass(frozen=True)
class Pair:
    assignment: str
    a: Entry
    b: Entry
    code: code.Match
    behaviour: behaviour.Behaviour | None  # None: one of them has no graded model
    verdict: Verdict
    reviewed: bool = False

    @property
    def signal(self) -> bool:
        """A pair a person should look at: a verdict, not cleared by review."""
        return self.verdict is not Verdict.NONE and not self.reviewed

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What course/reviewed.toml names: both students and both files' hashes."""
        return (self.a.student, self.a.content_hash, self.b.student, self.b.content_hash)


def pairs(
    assignment: str,
    entries: Iterable[Entry],
    labels: np.ndarray,
    limits: Similarity,
    reviewed: frozenset[tuple[str, str, str, str]] = frozenset(),
) -> list[Pair]:
    """Every pair of the entries (one per student), strongest signal first."""
    found = [
        _pair(assignment, a, b, labels, limits, reviewed)
        for a, b in itertools.combinations(sorted(entries, key=lambda e: e.student), 2)
    ]
    return sorted(found, key=_order)


def verdict(match: code.Match, seen: behaviour.Behaviour | None, limits: Similarity) -> Verdict:
    shared = match.similarity >= limits.min_code_similarity and match.overlap >= limits.min_overlap
    consistency = None if seen is None else seen.error_consistency
    alike = consistency is not None and consistency >= limits.min_error_consistency
    if shared and alike:
        return Verdict.CODE_ERRORS
    if shared:
        return Verdict.CODE
    return Verdict.ERRORS if alike else Verdict.NONE


def by_student(found: Iterable[Pair]) -> Iterator[tuple[str, str, str, Pair]]:
    """(student, their file's hash, the other student, pair) for each side of every signal."""
    for pair in found:
        if pair.signal:
            yield pair.a.student, pair.a.content_hash, pair.b.student, pair
            yield pair.b.student, pair.b.content_hash, pair.a.student, pair


def _pair(
    assignment: str,
    a: Entry,
    b: Entry,
    labels: np.ndarray,
    limits: Similarity,
    reviewed: frozenset[tuple[str, str, str, str]],
) -> Pair:
    match = code.compare(a.source, b.source)
    seen = behaviour.compare(a.predictions, b.predictions, labels)
    same = bool(a.content_hash) and a.content_hash == b.content_hash
    said = Verdict.IDENTICAL if same else verdict(match, seen, limits)
    cleared = (a.student, a.content_hash, b.student, b.content_hash) in reviewed
    return Pair(assignment, a, b, match, seen, said, cleared)


def _order(pair: Pair) -> tuple[bool, int, float, str, str]:
    consistency = pair.behaviour.error_consistency if pair.behaviour else None
    strongest = max(pair.code.similarity, consistency or 0.0)
    rank = list(Verdict).index(pair.verdict)
    return (pair.reviewed, rank, -strongest, pair.a.student, pair.b.student)
