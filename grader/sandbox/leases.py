"""Job uids: each running job gets a uid no other job (of any grader process) is using."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.sandbox.reap import kill_uid

JOB_UIDS = range(61000, 62000)
LOCK_DIR = Path("/run/course-grader")


class LeaseError(Exception):
    """Every job uid is taken."""


@contextmanager
def job_uid() -> Iterator[int]:
    """A free uid, held by an exclusive lock file until the block ends."""
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    for uid in JOB_UIDS:
        fd = os.open(LOCK_DIR / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            kill_uid(uid)  # leftovers of a grader that was killed mid-job
            yield uid
        finally:
            os.close(fd)
        return
    raise LeaseError(f"all {len(JOB_UIDS)} job uids are in use")
