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
from grader.jobs.context import GradingContext
from grader.jobs.grade import grade
from grader.jobs.seeds import STOPS_THE_SEEDS
from grader.sandbox.box import Sandbox


@dataclass(frozen=True)
class GradeRequest:
    submission: Submission
    context: GradingContext


Waiting = tuple[GradeRequest, Future[Result]]  # a request and the future its Result goes into


class Executor(Protocol):
    def submit_all(self, requests: list[GradeRequest]) -> list[Future[Result]]:
        """Start grading a batch at once (a cluster sends it as job arrays); each future holds
        a request's Result (grading never raises for the student). A request's future is
        cancelled where the executor did not grade it because an earlier seed of the same
        submission failed in a way that stops the rest (seeds.STOPS_THE_SEEDS)."""
        ...

    def stop(self) -> None:
        """Abandon the batch: cancel what has not started, end every running job now."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Each submission's first seed first; its other seeds, in parallel, once it passed: code
    that fails on one seed fails on every seed, so they are not graded (not waited for)."""

    def __init__(self, sandbox: Sandbox, workers: int) -> None:
        self._sandbox = sandbox
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grader")

    def submit_all(self, requests: list[GradeRequest]) -> list[Future[Result]]:
        futures: list[Future[Result]] = [Future() for _ in requests]
        chains: dict[tuple[str, str], list[int]] = {}
        for index, request in enumerate(requests):
            sub = request.submission
            chains.setdefault((sub.student, sub.assignment), []).append(index)
        for first, *rest in chains.values():
            then = [(requests[i], futures[i]) for i in rest]
            self._start(requests[first], futures[first], then)
        return futures

    def _start(self, request: GradeRequest, future: Future[Result], then: list[Waiting]) -> None:
        """Grade request into future; then the `then` requests, or none if it failed so."""
        try:
            started = self._pool.submit(grade, request.submission, request.context, self._sandbox)
        except RuntimeError:  # stopped meanwhile: nothing more starts
            for waiting in [future, *(f for _, f in then)]:
                drop(waiting)
            return

        def finished(done: Future[Result]) -> None:
            failed = None
            if done.cancelled():  # the batch was stopped
                drop(future)
            elif done.exception() is not None:  # the grader's own error: not the code's
                future.set_exception(done.exception())
            else:
                future.set_result(done.result())
                failed = done.result().status in STOPS_THE_SEEDS
            if done.cancelled() or failed:
                for _, waiting in then:
                    drop(waiting)
                return
            for next_request, next_future in then:
                self._start(next_request, next_future, [])

        started.add_done_callback(finished)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sandbox.kill_all()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def drop(future: Future[Result]) -> None:
    """Cancel a future no pool runs, and tell those waiting on it (as_completed, wait) too."""
    future.cancel()
    future.set_running_or_notify_cancel()
