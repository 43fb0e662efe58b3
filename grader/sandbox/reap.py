"""Ending processes: nothing a job started may outlive it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def kill_uid(uid: int) -> bool:
    """SIGKILL every process owned by uid; True if any was found."""
    found = False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            found = True
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def sweep(pid: int, uid: int | None) -> None:
    """The job's process group, then anything left running under its uid (daemons, setsid)."""
    kill_group(pid)
    if uid is not None:
        for _ in range(3):
            if not kill_uid(uid):
                break
            time.sleep(0.05)
