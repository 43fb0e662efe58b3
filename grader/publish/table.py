"""The leaderboard as a terminal table: the columns a TA scans, in the terminal's width.

Figures read as the progress lines say them (percentages, the gap in points), a target is a
mark, an unknown value is a dash, and a message wraps at word boundaries under its own column
(never cut, so its line number stays). With no width (a log file) no line is wrapped.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd

from grader.core.results import STUDENT
from grader.core.text import printable

DASH = "-"
GAP = "  "  # between columns
MIN_MESSAGE = 24  # narrower than this, a message goes on lines of its own under its row
INDENT = "    "  # those lines' indent
Row = dict[Hashable, Any]  # a board row, by column
Cell = Callable[[Row], str]


@dataclass(frozen=True)
class Marks:
    """How a target reads: a tick and a cross where the stream can print them."""

    met: str
    missed: str
    spread: str

    @classmethod
    def for_encoding(cls, encoding: str | None) -> Marks:
        fancy = cls("✓", "✗", "±")
        try:
            (fancy.met + fancy.missed + fancy.spread).encode(encoding or "ascii")
        except (LookupError, UnicodeEncodeError):
            return cls("yes", "no", "+/-")
        return fancy


def table_text(board: pd.DataFrame, width: int | None = None, marks: Marks | None = None) -> str:
    """The board as lines of at most `width` characters (None: as long as a row needs), but
    for a single word longer than the message column, which is never cut."""
    if board.empty:
        return "no results"
    marks = marks or Marks.for_encoding("utf-8")
    records = board.to_dict("records")
    columns = _columns(board, marks)
    cells = [[cell(row) for _, _, cell in columns] for row in records]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, (h, _, _) in enumerate(columns)]
    right = [r for _, r, _ in columns]
    header = _line([h for h, _, _ in columns], widths, right)
    lead = len(header) + len(GAP)
    room = None if width is None else width - lead
    lines = [header if room is not None and room < MIN_MESSAGE else header + GAP + "message"]
    for row, record in zip(cells, records, strict=True):
        message = _message(record)
        lines += _with_message(_line(row, widths, right), message, room, lead, width)
    lines += [legend(board, marks)] if width is None else _wrap(legend(board, marks), width)
    return "\n".join(line.rstrip() for line in lines)


def _columns(board: pd.DataFrame, marks: Marks) -> list[tuple[str, bool, Cell]]:
    """Each column's header, whether it is right-aligned (a number), and its cell. The
    assignment shows when the board holds several, lateness when any row's is known."""
    targets = [c for c in board.columns if c.startswith("target_")]
    several = board["assignment"].nunique() > 1
    late = "late" in board and bool(board["late"].notna().any())
    return [
        ("#", True, _rank),
        ("student", False, lambda row: _text(row["student"]) or DASH),
        *([("assignment", False, lambda row: _text(row["assignment"]))] if several else []),
        ("status", False, lambda row: str(row["status"])),
        ("test", True, lambda row: _test(row, marks)),
        ("gap", True, lambda row: _number(row["gap"], "{:+.2f}", 100)),
        ("targets", False, lambda row: _targets(row, targets, marks)),
        *([("late", False, lambda row: _late(row["late"]))] if late else []),
    ]


def _rank(row: Row) -> str:
    """A student's rank; a reference row (a baseline) is never ranked, and says what it is."""
    if row.get("kind", STUDENT) != STUDENT:
        return "ref"
    return _number(row["rank"], "{}")


def _number(value: Any, form: str, scale: int = 1) -> str:
    return DASH if _missing(value) else form.format(value * scale)


def _test(row: Row, marks: Marks) -> str:
    if _missing(row["test_accuracy"]):
        return DASH
    text = f"{100 * row['test_accuracy']:.2f}%"
    std: Any = row.get("test_accuracy_std")
    return text if _missing(std) else f"{text} {marks.spread}{100 * std:.2f}"


def _targets(row: Row, columns: list[str], marks: Marks) -> str:
    known = [(c.removeprefix("target_").upper(), row[c]) for c in columns if not _missing(row[c])]
    if not known:
        return DASH
    return " ".join(f"{name} {marks.met if met else marks.missed}" for name, met in known)


def _late(value: Any) -> str:
    if _missing(value):
        return DASH
    return "late" if value else "no"


def _with_message(
    head: str, message: str, room: int | None, lead: int, width: int | None
) -> list[str]:
    """A row and its message: beside it, wrapped in its column, or on lines below it."""
    if not message:
        return [head]
    if room is None:
        return [f"{head}{GAP}{message}"]
    if room < MIN_MESSAGE:
        assert width is not None
        return [head, *(INDENT + part for part in _wrap(message, width - len(INDENT)))]
    first, *rest = _wrap(message, room)
    return [f"{head}{GAP}{first}", *(" " * lead + part for part in rest)]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def legend(board: pd.DataFrame, marks: Marks) -> str:
    """What the figures are, and on which seeds (the board's rows may differ in them)."""
    scored = board[board["test_accuracy"].notna()]
    seeds = {s for s in scored["seeds"].dropna() if s} if "seeds" in board else set()
    over = ""
    if len(seeds) == 1:
        (shown,) = seeds
        if "," in shown:
            over = f", mean over seeds {shown.replace(',', ', ')} ({marks.spread} sd)"
        else:
            over = f" on seed {shown}"
    elif seeds:
        over = f", mean over each row's seeds ({marks.spread} sd)"
    references = "kind" in board and bool((board["kind"] != STUDENT).any())
    return (
        f"test: test accuracy{over}; gap: train minus test accuracy, in points; "
        f"targets: {marks.met} met, {marks.missed} not met; {DASH}: none"
        + ("; ref: a reference row (a baseline), not ranked" if references else "")
    )


def _line(cells: list[str], widths: list[int], right: list[bool]) -> str:
    """Numbers right-aligned (they compare digit by digit), text left-aligned."""
    return GAP.join(
        cell.rjust(size) if r else cell.ljust(size)
        for cell, size, r in zip(cells, widths, right, strict=True)
    )


def terminal_width(stream: IO[str]) -> int | None:
    """The width to fit: COLUMNS when set, else the terminal's; None for a file or a pipe (a
    log keeps whole lines) and for a terminal that reports no width."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not stream.isatty():
        return None
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (OSError, ValueError):
        return None


def _message(record: Mapping[Hashable, Any]) -> str:
    """The row's message, and on the instructor's board the students copy detection found its
    file alike with."""
    similar = _text(record.get("similar_to"))
    said = [_text(record.get("message")), f"similar to {similar}" if similar else ""]
    return "; ".join(part for part in said if part)


def _text(value: Any) -> str:
    """Student-controlled text (a rejected folder's name, a message) made inert."""
    return "" if _missing(value) else printable(str(value))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
