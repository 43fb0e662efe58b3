"""Running one job process to its end: the start-up handshake, the deadline, the output cap.

The child attests what it runs under and then waits; `check` decides whether it may go on. Only
then does student code run, watched until it exits, times out or writes too much.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grader.core.files import MB
from grader.core.text import printable
from grader.protocol import ATTESTATION_BYTES, Attestation, ProtocolError
from grader.sandbox import tree
from grader.sandbox.reap import kill_group

LOG_TAIL_BYTES = 4000
ENTRY_CHARGE = 4096  # bytes charged per file, folder or link in a job's output
# Past these a job's output is over its cap whatever its size: each check stays cheap, and a
# job that nests folders without end is stopped early.
MAX_OUTPUT_ENTRIES = 10_000
MAX_OUTPUT_DEPTH = 32  # levels of folders below the output folder
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
    cpu_seconds: float | None = None  # the job's CPU time (RLIMIT_CPU); None: wall clock only


@dataclass(frozen=True)
class JobOutcome:
    returncode: int
    timed_out: bool
    output_exceeded: bool
    seconds: float
    log_tail: str
    out_of_memory: bool = False
    overflow: str = ""  # with output_exceeded, what was too much: "wrote more than 16 MB"
    # (layer, problem) for each promised layer the job lacked: it was stopped before starting.
    # probe.START means the child never said what it runs under (it failed to start).
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


def watch(
    process: Running, out_dir: Path, limits: Limits, deadline: float, tmp_dir: Path | None = None
) -> tuple[bool, str | None]:
    """Wait for the job, killing it at the deadline or when its output grows past the cap, or
    its temp folder (where it has one on the host's disk, not a size-capped tmpfs) past
    limits.tmp_bytes. Returns whether it timed out, and what it wrote too much of."""
    caps = [(out_dir, limits.max_output_bytes, "")]
    caps += [] if tmp_dir is None else [(tmp_dir, limits.tmp_bytes, " to its temp folder")]
    found: list[str] = []
    stop = threading.Event()

    def check() -> bool:
        for folder, cap, where in caps:
            problem = overflow(folder, cap)
            if problem:
                found.append(problem + where)
                return True
        return False

    def watch_output() -> None:
        while not stop.wait(WATCH_SECONDS):
            if check():
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
    # What the job left counts too, however soon after its last check it ended.
    if not (timed_out or found):
        check()
    return timed_out, found[0] if found else None


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


def overflow(root: Path, max_bytes: int) -> str | None:
    """Why a job's output is past its cap, or None: more than max_bytes on disk (every entry's
    blocks, folders and links too, and a charge per entry so that a flood of empty files or hard
    links counts), more than MAX_OUTPUT_ENTRIES entries, or an entry more than MAX_OUTPUT_DEPTH
    levels below root. It stops as soon as it knows; a folder it cannot open counts as past."""
    used = 0
    too_much = f"wrote more than {max_bytes / MB:g} MB"
    try:
        with contextlib.closing(_walk(root)) as entries:
            for count, (depth, info) in enumerate(entries, 1):
                used += info.st_blocks * 512 + ENTRY_CHARGE
                if used > max_bytes:
                    return too_much
                if count > MAX_OUTPUT_ENTRIES:
                    return f"made more than {MAX_OUTPUT_ENTRIES} files and folders"
                if depth > MAX_OUTPUT_DEPTH:
                    return f"nested folders more than {MAX_OUTPUT_DEPTH} deep"
    except OSError:
        return too_much
    return None


def _walk(root: Path) -> Generator[tuple[int, os.stat_result], None, None]:
    """(depth, lstat) of every entry under root, depth first, through one folder fd per level:
    no path grows longer than a name, so no tree is too deep to walk. An entry removed or
    replaced while listed is passed over."""
    fds = [os.open(root, tree.FOLDER)]
    try:
        pending = [_names(fds[0])]
        while pending:
            if not pending[-1]:
                pending.pop()
                os.close(fds.pop())
                continue
            name = pending[-1].pop()
            try:
                info = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield len(pending), info
            if stat.S_ISDIR(info.st_mode):
                try:
                    fds.append(tree.open_folder(name, fds[-1]))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                pending.append(_names(fds[-1]))
    finally:
        for fd in fds:
            os.close(fd)


def _names(fd: int) -> list[str]:
    """The folder's entries, at most one past the cap: more is never needed."""
    with os.scandir(fd) as entries:
        return [entry.name for entry in itertools.islice(entries, MAX_OUTPUT_ENTRIES + 1)]


def tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return printable(handle.read().decode("utf-8", "replace"), keep_lines=True)
