"""What copy detection found, as files for the instructor: similarity.csv (every pair) and
similarity.html (the pairs to review first, their code side by side with the shared parts
marked). Neither is ever published with the board: both name students.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import markupsafe
import pandas as pd

from grader.core.files import atomic_path
from grader.core.spec import Similarity
from grader.publish.export import write_csv
from grader.publish.render import csp_hash, html_env
from grader.similarity.pairs import Pair, Verdict

CSV_NAME = "similarity.csv"
HTML_NAME = "similarity.html"
COLUMNS = [
    "assignment",
    "student_a",
    "student_b",
    "code_similarity",
    "error_consistency",
    "shared_wrong",
    "verdict",
    "reviewed",
]
SHOWN = 50  # pairs per assignment whose code the page shows side by side; the CSV has all


@dataclass(frozen=True)
class Findings:
    """One assignment's pairs, and what they were measured against."""

    assignment: str
    title: str
    pairs: list[Pair]  # strongest signal first
    students: int
    graded: int  # students whose model's predictions were compared
    limits: Similarity
    base_files: tuple[str, ...]  # taken out of every file's code, as the spec names them
    missing: tuple[str, ...] = ()  # base files the spec names that were not found
    base_models: int = 0  # base files whose own model's mistakes the pairs were held against

    @property
    def explained(self) -> int:
        """Pairs alike in their mistakes past the threshold as much as the starter's model."""
        return sum(p.explained for p in self.pairs)

    @property
    def signals(self) -> list[Pair]:
        return [p for p in self.pairs if p.signal]

    @property
    def counts(self) -> dict[Verdict, int]:
        said = [p.verdict for p in self.signals]
        return {v: said.count(v) for v in Verdict if v is not Verdict.NONE and v in said}

    @property
    def shown(self) -> list[Pair]:
        """The pairs the page shows: those with a verdict, and those the starter explains."""
        return [p for p in self.pairs if p.verdict is not Verdict.NONE or p.explained][:SHOWN]


def write(findings: Iterable[Findings], out: Path) -> list[Path]:
    findings = list(findings)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(frame(findings), out / CSV_NAME)
    env = html_env()
    style = env.get_template("page.css").render() + env.get_template("similarity.css").render()
    page = env.get_template("similarity.html.j2").render(
        findings=findings,
        marked=marked,
        snippet=snippet,
        style=style,
        csp=f"default-src 'none'; style-src {csp_hash(style)}",
    )
    with atomic_path(out / HTML_NAME) as temp:
        temp.write_text(page, encoding="utf-8")
    return [out / CSV_NAME, out / HTML_NAME]


def frame(findings: Iterable[Findings]) -> pd.DataFrame:
    rows = [_row(pair) for found in findings for pair in found.pairs]
    return pd.DataFrame(rows, columns=COLUMNS)


def marked(text: str, spans: list[tuple[int, int]]) -> markupsafe.Markup:
    """The text escaped, each span of it (start, end) in a <mark>."""
    parts, at = [], 0
    for start, end in sorted(spans):
        start = max(start, at)
        if end <= start:
            continue
        parts += [markupsafe.escape(text[at:start]), _mark(text[start:end])]
        at = end
    parts.append(markupsafe.escape(text[at:]))
    return markupsafe.Markup("").join(parts)


def snippet(pair: Pair) -> str:
    """The [[pair]] table that clears this pair of files (core/review.py reads it); the values
    as JSON strings, which TOML reads as the same basic strings."""
    students = json.dumps([pair.a.student, pair.b.student])
    hashes = json.dumps([pair.a.content_hash, pair.b.content_hash])
    return (
        f"[[pair]]\nstudents = {students}\ncontent_hashes = {hashes}\n"
        'note = ""  # optional: what the review found\n'
    )


def _mark(text: str) -> markupsafe.Markup:
    return markupsafe.Markup("<mark>{}</mark>").format(text)


def _row(pair: Pair) -> dict[str, object]:
    seen = pair.behaviour
    return {
        "assignment": pair.assignment,
        "student_a": pair.a.student,
        "student_b": pair.b.student,
        "code_similarity": round(pair.code.similarity, 4),
        "error_consistency": _rounded(seen.error_consistency if seen else None),
        "shared_wrong": _rounded(seen.shared_wrong if seen else None),
        "verdict": str(pair.verdict),
        "reviewed": pair.reviewed,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
