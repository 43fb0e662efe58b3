"""Pid 1 of a job's pid namespace: a bare init that reaps whatever is orphaned and ends as the
job ends, taking every other process of the namespace with it.

The job itself is never pid 1: the kernel drops signals that pid 1 does not handle, even a
SIGKILL the job sends itself, so a job as pid 1 could not be killed from inside.
"""

from __future__ import annotations

import os
import sys

INIT = """
import os, sys
job = int(sys.argv[1])
while True:
    pid, status = os.wait()
    if pid == job:
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)
"""


def become_init(job: int) -> None:
    """Replace this process (and all it holds) with the bare init of the job's namespace."""
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.execv(sys.executable, ["init", "-I", "-S", "-c", INIT, str(job)])
