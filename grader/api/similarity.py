"""Copy detection as a use case: `grader similarity`, and the step at the end of `grader run`.

Each assignment's submissions are compared pair by pair, by their code (the spec's base files
taken out) and by the mistakes of the models the store graded from exactly those files. The
pairs go to similarity.csv and similarity.html beside the store (never to a published folder),
and into the store, from which the instructor's board names each row's similar students.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.api.common import Log, find_specs, grading_data
from grader.core.review import load_reviewed_pairs, reviewed_path
from grader.core.spec import Spec, SpecsAsked, load_specs
from grader.core.submission import MAX_SOURCE_BYTES, Submission, discover
from grader.data.cache import PreparedData
from grader.jobs.grade import now
from grader.similarity import code, report
from grader.similarity.pairs import Entry, Pair, pairs
from grader.similarity.predictions import unpack
from grader.store.sqlite import DB_NAME, SimilarPair, Store


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
    asked = options.assignments
    folder = asked if isinstance(asked, Path) else find_specs(asked, options.submissions, log)
    specs = load_specs(folder)
    max_weights = max(s.budgets.weights_bytes for s in specs.values())
    submissions = discover(options.submissions, specs, max_weights)
    store = Store(options.results / DB_NAME, create=False)

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
) -> SimilaritySummary:
    """Each assignment's pairs found, kept in the store and written to out."""
    findings = []
    for name, subs in _by_assignment(submissions).items():
        spec = specs[name]
        found = _findings(spec, subs, store, data(spec), log)
        store.keep_pairs(name, [_kept(p) for p in found.pairs if p.verdict != "none"], now())
        findings.append(found)
        log(summary_line(found))
    return SimilaritySummary(findings, report.write(findings, out))


def summary_line(found: report.Findings) -> str:
    counts = ", ".join(f"{n} {verdict}" for verdict, n in found.counts.items())
    review = f"{len(found.signals)} to review ({counts})" if found.signals else "none to review"
    return f"similarity {found.assignment}: {len(found.pairs)} pairs compared, {review}"


def _findings(
    spec: Spec, subs: list[Submission], store: Store, data: PreparedData, log: Log
) -> report.Findings:
    paths = spec.similarity.paths(spec.path)
    missing = tuple(
        n for n, p in zip(spec.similarity.base_files, paths, strict=True) if not p.is_file()
    )
    for name in missing:
        log(f"similarity {spec.name}: base file {name} not found: it is not taken out of the code")
    base = code.base_kgrams([_text(p) for p in paths if p.is_file()])
    stored = store.predictions(spec.name, data.checksum)
    entries = [_entry(sub, base, stored, data.test_size) for sub in subs]
    reviewed = load_reviewed_pairs(reviewed_path(spec.path.parent))
    labels = np.asarray(data.load("test_labels"))
    found = pairs(spec.name, entries, labels, spec.similarity, reviewed)
    return report.Findings(
        assignment=spec.name,
        title=spec.assignment.title,
        pairs=found,
        students=len(entries),
        graded=sum(bool(e.predictions) for e in entries),
        limits=spec.similarity,
        base_files=spec.similarity.base_files,
        missing=missing,
    )


def _by_assignment(submissions: Iterable[Submission]) -> dict[str, list[Submission]]:
    """The submissions with a file to read (a rejected folder has none), by assignment."""
    grouped: dict[str, list[Submission]] = {}
    for sub in submissions:
        if sub.problem is None:
            grouped.setdefault(sub.assignment, []).append(sub)
    return grouped


def _entry(
    sub: Submission, base: np.ndarray, stored: dict[tuple[str, str], dict[str, str]], size: int
) -> Entry:
    packed = stored.get((sub.student, sub.content_hash), {})
    predictions = {int(seed): unpack(text, size) for seed, text in packed.items()}
    kept = {seed: classes for seed, classes in predictions.items() if classes is not None}
    return Entry(sub.student, sub.content_hash, code.source(_text(sub.source), base), kept)


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
