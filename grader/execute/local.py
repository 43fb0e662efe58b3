"""The executor seam: grading a batch is submitting requests and getting Results back.

A GradeRequest is plain data (a submission and how to grade it), so an executor may grade it in
this process's threads, in warm processes, or on another machine. `LocalExecutor` grades on this
machine: a thread per worker slot, each job in the one sandbox (warm or cold, as it proved).
`slurm.SlurmExecutor` grades on a Slurm cluster, one array task per submission.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from grader.core.results import Result
from grader.core.submission import Submission
from grader.jobs.grade import GradingContext, grade
from grader.sandbox.box import Sandbox


@dataclass(frozen=True)
class GradeRequest:
    submission: Submission
    context: GradingContext


class Executor(Protocol):
    def submit_all(self, requests: list[GradeRequest]) -> list[Future[Result]]:
        """Start grading a batch at once (a cluster sends it as job arrays); each future holds
        a request's Result (grading never raises for the student)."""
        ...

    def stop(self) -> None:
        """Abandon the batch: cancel what has not started, end every running job now."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    def __init__(self, sandbox: Sandbox, workers: int) -> None:
        self._sandbox = sandbox
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grader")

    def submit_all(self, requests: list[GradeRequest]) -> list[Future[Result]]:
        return [self._pool.submit(grade, r.submission, r.context, self._sandbox) for r in requests]

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sandbox.kill_all()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
