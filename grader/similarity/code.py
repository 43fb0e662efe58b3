"""Code similarity with the starter taken out, by copydetect (fingerprints of Pygments tokens,
names replaced by placeholders, comments dropped).

Each file is first read as Python and written back in one layout (ast.unparse): comments and
docstrings go, and so do the differences a copier makes without changing the code (line
breaks, trailing commas, quotes, brackets, a method's `self` renamed). Renamed variables and
functions then tokenise alike, and a fingerprint is a set, so reordered functions match too. A
file that is not valid Python is compared as written.

Every k-gram is kept (a window of 1): copydetect hashes with Python's salted `hash()`, and
winnowing over a larger window keeps different fingerprints in each process, so two runs on
the same files gave different figures (0.502, 0.493, 0.495 for one pair); with every k-gram the
overlap is exact and the same in every run.
"""

from __future__ import annotations

import ast
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from grader.core.text import visible

if TYPE_CHECKING:  # imported where used: copydetect imports matplotlib's pyplot with it
    from copydetect import CodeFingerprint

# copydetect's noise threshold: matches shorter than this many characters of tokenised code
# (about a short line) are noise, never evidence.
K = 25
NAME = "submission.py"  # every file is Python whatever it was called: the lexer is fixed


@dataclass(frozen=True)
class Source:
    """One submission's code, fingerprinted with the base files' k-grams taken out."""

    text: str  # as submitted, control and invisible characters made visible
    compared: str  # as compared (see canonical): what the match's spans point into
    fingerprint: CodeFingerprint

    @property
    def own_size(self) -> int:
        """Characters of tokenised code left once the base files' k-grams are out."""
        return int(self.fingerprint.token_coverage)


@dataclass(frozen=True)
class Match:
    """What two sources share: the share of each one's own code found in the other, the
    characters of tokenised code in common, and where (start, end) in each text."""

    similarity: float  # the larger share: a file copied whole into a longer one is found
    shares: tuple[float, float]
    overlap: int
    spans: tuple[list[tuple[int, int]], list[tuple[int, int]]]


def base_kgrams(texts: list[str]) -> np.ndarray:
    """The k-grams of the starter and any other base files, taken out of every source."""
    hashes: set[int] = set()
    for text in texts:
        hashes |= _fingerprint(canonical(text), np.array([], dtype=np.int64)).hashes
    return np.array(sorted(hashes), dtype=np.int64)


def source(text: str, base: np.ndarray) -> Source:
    compared = canonical(text)
    return Source(visible(text), compared, _fingerprint(compared, base))


def canonical(text: str) -> str:
    """The code in one layout, without comments or docstrings, each method's first parameter
    named self; as written (made visible) when it is not valid Python."""
    try:
        tree = _Canonical().visit(ast.parse(text))
        return visible(ast.unparse(tree))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return visible(text)


def compare(a: Source, b: Source) -> Match:
    from copydetect import compare_files

    overlap, shares, spans = compare_files(a.fingerprint, b.fingerprint)
    if not overlap:
        return Match(0.0, (0.0, 0.0), 0, ([], []))
    first, second = (float(s) for s in shares)
    # copydetect's slices over the shared k-grams reach past a file's end when its last
    # k-gram matches; the text's own length bounds them.
    return Match(
        max(first, second),
        (first, second),
        int(overlap),
        (_spans(spans[0], len(a.compared)), _spans(spans[1], len(b.compared))),
    )


def _fingerprint(text: str, base: np.ndarray) -> CodeFingerprint:
    from copydetect import CodeFingerprint

    return CodeFingerprint(
        NAME, K, 1, boilerplate=base, filter=True, language="python", fp=io.StringIO(text)
    )


def _spans(slices: np.ndarray, length: int) -> list[tuple[int, int]]:
    return [(int(s), min(int(e), length)) for s, e in zip(slices[0], slices[1], strict=True)]


class _Canonical(ast.NodeTransformer):
    """Docstrings out; a method's first parameter, and every use of it, named self."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        node.body = _undocumented(node.body)
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        node.body = _undocumented(node.body)
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.args.args:
                _rename(item, item.args.args[0].arg, "self")
        self.generic_visit(node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.body = _undocumented(node.body)
        self.generic_visit(node)
        return node


def _undocumented(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    return (body[1:] or [ast.Pass()]) if docstring else body


def _rename(function: ast.FunctionDef | ast.AsyncFunctionDef, old: str, new: str) -> None:
    if old == new:
        return
    for node in ast.walk(function):
        if isinstance(node, ast.arg) and node.arg == old:
            node.arg = new
        elif isinstance(node, ast.Name) and node.id == old:
            node.id = new
