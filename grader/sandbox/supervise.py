"""Running one job process to its end: the start-up handshake, the deadline, the output cap.

The child attests what it runs under and then waits; `check` decides whether it may go on. Only
then does student code run, watched until it exits, times out or writes too much.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grader.core.text import printable
from grader.protocol import ATTESTATION_BYTES, Attestation, ProtocolError
from grader.sandbox.reap import kill_group

LOG_TAIL_BYTES = 4000
ENTRY_CHARGE = 4096  # bytes charged per file, folder or link in a job's output
WATCH_SECONDS = 0.25


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float
    memory_bytes: int
    max_processes: int
    max_file_bytes: int
    max_open_files: int
    max_output_bytes: int
    threads: int = 1
    tmp_bytes: int = 256 << 20


@dataclass(frozen=True)
class JobOutcome:
    returncode: int
    timed_out: bool
    output_exceeded: bool
    seconds: float
    log_tail: str
    out_of_memory: bool = False
    # (layer, problem) for each promised layer the job lacked: it was stopped before starting.
    # Layer "start" means the child never said what it runs under (it failed to start).
    breaches: tuple[tuple[str, str], ...] = ()

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the job; bwrap and sh report one as exit code 128 + N."""
        if self.returncode < 0:
            number = -self.returncode
        elif 128 < self.returncode <= 128 + 64:
            number = self.returncode - 128
        else:
            return None
        try:
            return signal.Signals(number).name
        except ValueError:
            return f"signal {number}"


# Given the attestation (None if none came), the reason the job may not go on, or None.
Check = Callable[[Attestation | None], str | None]


class Running(Protocol):
    """A started job: a Popen, or a job forked by a warm process."""

    pid: int
    returncode: int | None

    def wait(self, timeout: float | None = None) -> int: ...


def start(
    argv: list[str], env: dict[str, str], log: int, pass_fds: tuple[int, ...]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd="/",
        start_new_session=True,
        pass_fds=pass_fds,
    )


def handshake(attest_fd: int, go_fd: int, deadline: float, check: Check) -> str | None:
    """Read the child's attestation; let it go on if `check` finds nothing wrong."""
    try:
        line = _read_line(attest_fd, deadline)
        attestation = None
        with contextlib.suppress(ProtocolError):
            attestation = Attestation.from_line(line) if line else None
        problem = check(attestation)
        if problem is None:
            with contextlib.suppress(BrokenPipeError):
                os.write(go_fd, b"1")
        return problem
    finally:
        os.close(attest_fd)
        os.close(go_fd)


def watch(process: Running, out_dir: Path, limits: Limits, deadline: float) -> tuple[bool, bool]:
    """Wait for the job, killing it at the deadline or when its output grows past the cap."""
    exceeded = threading.Event()
    stop = threading.Event()

    def watch_output() -> None:
        while not stop.wait(WATCH_SECONDS):
            if tree_size(out_dir) > limits.max_output_bytes:
                exceeded.set()
                kill_group(process.pid)
                return

    watcher = threading.Thread(target=watch_output, daemon=True)
    watcher.start()
    timed_out = False
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(process.pid)
        process.wait()
    finally:
        stop.set()
        watcher.join()
    return timed_out, exceeded.is_set()


def _read_line(fd: int, deadline: float) -> bytes:
    """One line from fd, or what came before EOF, the deadline or the size cap."""
    data = b""
    while b"\n" not in data and len(data) < ATTESTATION_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0] if b"\n" in data else b""


def tree_size(root: Path) -> int:
    """Disk used under root: every entry's blocks, folders and links too, and a charge per entry
    so that a flood of empty files or hard links counts against the cap."""
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                total += entry.stat(follow_symlinks=False).st_blocks * 512 + ENTRY_CHARGE
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
    return total


def tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return printable(handle.read().decode("utf-8", "replace"), keep_lines=True)
