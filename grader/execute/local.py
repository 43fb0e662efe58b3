"""The local executor: a thread pool on this machine. Each worker grades one submission at a
time; the sandboxed children do the heavy work, so threads are enough here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Protocol

from grader.core.results import Result
from grader.core.submission import Submission

Grade = Callable[[Submission], Result]


class Executor(Protocol):
    """Grades a batch: yields each submission's Result as soon as it is known."""

    def results(self, pending: list[Submission], grade: Grade) -> Iterator[Result]: ...


class LocalExecutor:
    def __init__(self, workers: int, stop_all: Callable[[], None]) -> None:
        """stop_all ends every running job at once, for when the batch is abandoned."""
        self.workers = workers
        self._stop_all = stop_all

    def results(self, pending: list[Submission], grade: Grade) -> Iterator[Result]:
        if not pending:
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(grade, sub) for sub in pending]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except BaseException:  # interrupted, or the consumer stopped listening
                for future in futures:
                    future.cancel()
                self._stop_all()
                raise
