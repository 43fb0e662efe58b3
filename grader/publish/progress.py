"""How a run reads on the terminal: a bar on a terminal, one line per finished submission in a
log (and, above the bar, for each that failed), and the closing summary."""

from __future__ import annotations

import sys
from collections import Counter
from typing import IO, Any

from grader.core.results import Result
from grader.core.text import one_line
from grader.publish.table import terminal_width

MESSAGE_CHARS = 80


class RunProgress:
    """Called with each finished submission (see grader.api.Progress)."""

    def __init__(self, stream: IO[str] | None = None, *, bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        # A terminal that reports no width (a dumb one, a pty no one sized) gets lines: a bar
        # redrawn with carriage returns would pile up there, or never show.
        self.bar = _sized_terminal(self.stream) if bar is None else bar
        self._tqdm: Any = None

    def __call__(self, result: Result, done: int, total: int) -> None:
        if self.bar:
            if self._tqdm is None:
                from tqdm import tqdm

                self._tqdm = tqdm(total=total, desc="grading", unit="sub", file=self.stream)
            name = one_line(result.student, 64)  # a rejected folder's name is the student's
            if not result.ok:  # stays on the screen when the bar moves on
                self._tqdm.write(line(result), file=self.stream)
            self._tqdm.set_postfix_str(f"{name}/{result.assignment}: {result.status}")
            self._tqdm.update()
            if done == total:
                self.close()
            return
        width = len(str(total))
        print(f"[{done:>{width}}/{total}] {line(result)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None


def _sized_terminal(stream: IO[str]) -> bool:
    return stream.isatty() and terminal_width(stream) is not None


def line(result: Result) -> str:
    """One finished submission in a line: what a TA scanning a log needs."""
    name = f"{one_line(result.student, 64)}/{result.assignment}"
    if result.ok:
        seconds = f", trained in {result.train_seconds:.1f} s" if result.train_seconds else ""
        met = [name for name, ok in sorted(result.targets.items()) if ok]
        return (
            f"{name}: ok, test {(result.test_accuracy or 0) * 100:.2f}%, gap "
            f"{(result.gap or 0) * 100:+.2f} points, targets met: {', '.join(met) or 'none'}"
            f"{seconds}"
        )
    return f"{name}: {result.status}: {one_line(result.message, MESSAGE_CHARS)}"


def summary(statuses: list[str], graded: int, reused: int) -> str:
    counts = Counter(statuses)
    ok = counts.pop("ok", 0)
    failed = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (
        f"{len(statuses)} rows: {ok} ok"
        + (f", {sum(counts.values())} failed ({failed})" if counts else "")
        + f"; {graded} graded now, {reused} reused"
    )
