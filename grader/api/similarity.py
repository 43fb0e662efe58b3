"""Copy detection as a use case: `grader similarity`, and the step at the end of `grader run`.

Each assignment's submissions are compared pair by pair, by their code (the spec's base files
taken out) and by the mistakes of the models the store graded from exactly those files. When a
pair's mistakes are alike past the threshold, the base files' own models are asked whether they
explain it (see similarity/pairs.py): `grader run` grades them then, once, and the store keeps
their predictions; `grader similarity` uses what the store holds. The pairs go to
similarity.csv and similarity.html beside the store (never to a published folder), and into
the store, from which the instructor's board names each row's similar students.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from grader.api.common import Log, find_specs, grading_data
from grader.core.errors import UserError
from grader.core.results import Result
from grader.core.review import load_reviewed_pairs, reviewed_path
from grader.core.spec import Spec, SpecsAsked, load_specs
from grader.core.submission import MAX_SOURCE_BYTES, Submission, discover, from_file
from grader.data.cache import PreparedData
from grader.jobs.grade import now
from grader.similarity import code, report
from grader.similarity.pairs import Entry, Pair, Predictions, Verdict, pairs
from grader.similarity.predictions import unpack
from grader.store.sqlite import DB_NAME, SimilarPair, Store

BASE = "base:"  # a base file's name as a submission's student: no student id holds a colon
BY_MISTAKES = (Verdict.ERRORS, Verdict.CODE_ERRORS)  # verdicts a starter's model may explain
# Grades a base file as a submission (its student BASE + the file's name); None: it failed.
GradeBase = Callable[[Spec, Submission], Result | None]


@dataclass(frozen=True)
class SimilarityOptions:
    submissions: Path
    results: Path  # the folder of grades.sqlite, whose graded models are compared
    assignments: Path | SpecsAsked
    data_dir: Path
    cache_dir: Path
    out: Path | None = None  # where similarity.csv and .html go; None: the results folder


@dataclass(frozen=True)
class SimilaritySummary:
    findings: list[report.Findings]
    files: list[Path]


def similarity(options: SimilarityOptions, log: Log) -> SimilaritySummary:
    """Compare every pair of students in each assignment the submissions folder holds."""
    store = Store(options.results / DB_NAME, create=False)
    asked = options.assignments
    folder = asked if isinstance(asked, Path) else find_specs(asked, options.submissions, log)
    specs = load_specs(folder)
    max_weights = max(s.budgets.weights_bytes for s in specs.values())
    submissions = discover(options.submissions, specs, max_weights)

    def data(spec: Spec) -> PreparedData:
        return grading_data(spec, options.data_dir, options.cache_dir).data

    return compare_all(specs, submissions, store, data, options.out or options.results, log)


def compare_all(
    specs: dict[str, Spec],
    submissions: Iterable[Submission],
    store: Store,
    data: Callable[[Spec], PreparedData],
    out: Path,
    log: Log,
    grade_base: GradeBase | None = None,
) -> SimilaritySummary:
    """Each assignment's pairs found, kept in the store and written to out; grade_base, when
    given, grades a base file whose model a pair needs and the store lacks."""
    findings = []
    for name, subs in _by_assignment(submissions).items():
        spec = specs[name]
        compared = _Compared(spec, subs, store, data(spec), log)
        found = compared.findings()
        if grade_base is not None and compared.needs_bases(found):
            compared.grade_bases(grade_base)
            found = compared.findings()
        kept = [_kept(p) for p in found.pairs if p.verdict is not Verdict.NONE]
        store.keep_pairs(name, kept, now())
        findings.append(found)
        log(summary_line(found))
    try:
        return SimilaritySummary(findings, report.write(findings, out))
    except OSError as exc:
        raise UserError(f"cannot write similarity.csv into {out}: {exc.strerror or exc}") from None


def summary_line(found: report.Findings) -> str:
    counts = ", ".join(f"{n} {verdict}" for verdict, n in found.counts.items())
    review = f"{len(found.signals)} to review ({counts})" if found.signals else "none to review"
    return f"similarity {found.assignment}: {len(found.pairs)} pairs compared, {review}"


class _Compared:
    """One assignment: its students' entries, and its base files with their models."""

    def __init__(
        self, spec: Spec, subs: list[Submission], store: Store, data: PreparedData, log: Log
    ) -> None:
        self.spec, self.store, self.data = spec, store, data
        limits = spec.similarity
        paths = dict(zip(limits.base_files, limits.paths(spec.path), strict=True))
        self.missing = tuple(name for name, path in paths.items() if not path.is_file())
        for name in self.missing:
            log(f"similarity {spec.name}: base file {name} not found: it is not taken out")
        weights = spec.budgets.weights_bytes
        self.bases = [
            replace(from_file(path, spec.name, weights), student=BASE + path.name)
            for path in paths.values()
            if path.is_file()
        ]
        kgrams = code.base_kgrams([_text(base.source) for base in self.bases])
        stored = store.predictions(spec.name, data.checksum)
        self.entries = [_entry(sub, kgrams, stored, data.test_size) for sub in subs]
        self.labels = np.asarray(data.load("test_labels"))
        self.reviewed = load_reviewed_pairs(reviewed_path(spec.path.parent))
        # Each base file's model as the store holds it (empty: not graded on this data).
        self.models = {base.source.name: self._stored(base) for base in self.bases}

    def findings(self) -> report.Findings:
        references = [model for model in self.models.values() if model]
        limits = self.spec.similarity
        found = pairs(self.spec.name, self.entries, self.labels, limits, self.reviewed, references)
        return report.Findings(
            assignment=self.spec.name,
            title=self.spec.assignment.title,
            pairs=found,
            students=len(self.entries),
            graded=sum(bool(e.predictions) for e in self.entries),
            limits=limits,
            base_files=limits.base_files,
            missing=self.missing,
            base_models=len(references),
        )

    def needs_bases(self, found: report.Findings) -> bool:
        """A pair is judged by its alike mistakes (identical files need no model to be named)
        and a base file's model is unknown."""
        unknown = not all(self.models.values())
        return unknown and any(p.verdict in BY_MISTAKES for p in found.pairs)

    def grade_bases(self, grade: GradeBase) -> None:
        for base in self.bases:
            if self.models[base.source.name]:
                continue
            result = grade(self.spec, base)
            if result is not None and result.test_predictions:
                self.store.keep_base(base.source.name, result)
                self.models[base.source.name] = self._stored(base)

    def _stored(self, base: Submission) -> Predictions:
        packed = self.store.base_predictions(
            self.spec.name, base.source.name, base.content_hash, self.data.checksum
        )
        return _unpacked(packed, self.data.test_size)


def _by_assignment(submissions: Iterable[Submission]) -> dict[str, list[Submission]]:
    """The submissions with a file to read (a rejected folder has none), by assignment."""
    grouped: dict[str, list[Submission]] = {}
    for sub in submissions:
        if sub.problem is None:
            grouped.setdefault(sub.assignment, []).append(sub)
    return grouped


def _entry(
    sub: Submission, kgrams: np.ndarray, stored: dict[tuple[str, str], dict[str, str]], size: int
) -> Entry:
    predictions = _unpacked(stored.get((sub.student, sub.content_hash), {}), size)
    return Entry(sub.student, sub.content_hash, code.source(_text(sub.source), kgrams), predictions)


def _unpacked(packed: dict[str, str], size: int) -> Predictions:
    """Each seed's classes; a seed whose text does not unpack to `size` classes is left out."""
    classes = {int(seed): unpack(text, size) for seed, text in packed.items()}
    return {seed: c for seed, c in classes.items() if c is not None}


def _text(path: Path) -> str:
    with path.open("rb") as file:
        return file.read(MAX_SOURCE_BYTES).decode("utf-8", errors="replace")


def _kept(pair: Pair) -> SimilarPair:
    seen = pair.behaviour
    return SimilarPair(
        assignment=pair.assignment,
        student_a=pair.a.student,
        hash_a=pair.a.content_hash,
        student_b=pair.b.student,
        hash_b=pair.b.content_hash,
        code_similarity=pair.code.similarity,
        error_consistency=seen.error_consistency if seen else None,
        shared_wrong=seen.shared_wrong if seen else None,
        verdict=str(pair.verdict),
        reviewed=pair.reviewed,
    )
