"""Reports written beside the grading, not in its way.

A row's report (two matplotlib pictures, HTML and Markdown) is handed to one thread of lower
priority the moment the row is stored: it is drawn while other submissions train, on a core
their children leave idle, and the training children are scheduled first when none is. One
thread, not a pool: more would take the cores that training needs, and matplotlib holds the
GIL while it draws.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from grader.api.common import Log
from grader.core.results import Result
from grader.core.spec import Spec
from grader.core.submission import StudentMeta
from grader.publish.reports import build_report, report_folder, write_report

# Added to the thread's niceness: enough that training goes first, not so much that the thread,
# holding the GIL mid-picture, starves the workers that wait to start the next job.
NICENESS = 10


class ReportWriter:
    """Writes each row's report on its own thread; `finish` waits for them all."""

    def __init__(
        self, specs: dict[str, Spec], out: Path, meta: dict[str, StudentMeta], log: Log
    ) -> None:
        self._specs, self._out, self._meta, self._log = specs, out, meta, log
        self._pool = ThreadPoolExecutor(1, "reports", initializer=_lower_priority)
        self._writing: list[Future[int]] = []
        self._submitted: set[Path] = set()  # this run's reports, written or still to write

    def submit(self, result: Result) -> None:
        self._submitted.add(report_path(self._out, result))
        self._writing.append(self._pool.submit(self._write, result))

    def missing(self, results: list[Result]) -> None:
        """Reports for the rows that have none yet (reused from earlier runs): an unchanged row
        whose report exists, or is this run's, is never drawn again."""
        for result in results:
            path = report_path(self._out, result)
            if path not in self._submitted and not path.exists():
                self.submit(result)

    def finish(self) -> int:
        """How many reports were written, once every one submitted is."""
        self._pool.shutdown(wait=True)
        return sum(future.result() for future in self._writing)

    def abandon(self) -> None:
        """An interrupted run: what has not started is dropped (the next run writes it)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _write(self, result: Result) -> int:
        """Write one row's report; a report that cannot be written is said, not fatal."""
        try:
            spec, meta = self._specs.get(result.assignment), self._meta.get(result.student)
            report = build_report(result, spec, meta)
            write_report(report, report_folder(self._out, result.student, result.kind))
        except Exception as exc:  # a report is an extra: never lose the run over one
            reason = exc.strerror if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
            self._log(f"warning: no report for {result.student}/{result.assignment}: {reason}")
            return 0
        return 1


def report_path(out: Path, result: Result) -> Path:
    return report_folder(out, result.student, result.kind) / f"{result.assignment}.html"


def _lower_priority() -> None:
    """Renice this thread alone: on Linux a thread's niceness is its own (elsewhere the call
    would renice the whole process, workers included, so it is not made)."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + NICENESS)
