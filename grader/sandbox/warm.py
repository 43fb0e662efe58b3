"""The grader's side of the warm processes: start them, hand each a job, wait for its end.

One warm process serves one job at a time; a pool keeps one per job running at once (one per
worker slot) and starts them as they are first needed.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from grader import protocol
from grader.sandbox.zygote import MESSAGE_BYTES, Request

START_SECONDS = 300


class WarmError(Exception):
    """A warm process would not start or stopped answering."""


class WarmJob:
    """A forked job, waited for through its warm process (which is its parent)."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._zygote = zygote

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            message = self._zygote.receive(timeout)
            self.returncode = int(message["exit"])
        return self.returncode


class Zygote:
    def __init__(self, threads: int, preload: bool, spawner: ThreadPoolExecutor) -> None:
        """Start a warm process from the spawner's thread: the process dies with that thread
        (PR_SET_PDEATHSIG), so it must be one that lives as long as the grader needs it. It is
        not waited for here (see ready)."""
        self.threads = threads
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._channel = ours
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - kept for the process's life
        argv = [sys.executable, "-s", "-B", "-P", "-m", "grader.sandbox.zygote"]
        argv += [str(theirs.fileno()), str(os.getpid()), *(["--preload"] if preload else [])]
        self._process = spawner.submit(
            subprocess.Popen,
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._errors,
            stderr=self._errors,
            env=protocol.child_env(threads),
            cwd="/",
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        ).result()
        theirs.close()
        self._ready = False

    def ready(self) -> None:
        """Wait until the process has imported what it preloads (once); WarmError if it
        failed to. Started is not ready: a pool starts processes before it needs them."""
        if self._ready:
            return
        ready = self.receive(START_SECONDS)
        if "ready" not in ready:
            raise WarmError(str(ready.get("error", ready)))
        self._ready = True

    def start(self, request: Request, log: int, attest: int, go: int) -> WarmJob:
        socket.send_fds(self._channel, [request.encode()], [log, attest, go])
        return WarmJob(self, int(self.receive(START_SECONDS)["pid"]))

    def receive(self, timeout: float | None) -> dict[str, Any]:
        """The next message, or subprocess.TimeoutExpired, as Popen.wait raises it."""
        ready, _, _ = select.select([self._channel], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired("warm job", timeout or 0)
        data = self._channel.recv(MESSAGE_BYTES)
        if not data:
            raise WarmError(f"the warm process stopped answering: {self._stderr()}")
        message: dict[str, Any] = json.loads(data)
        return message

    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        self._channel.close()
        self._process.kill()
        self._process.wait()
        self._errors.close()

    def _stderr(self) -> str:
        self._errors.seek(0)
        lines = self._errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self._process.poll()}"


class ZygotePool:
    """Warm processes by thread count, each lent to one job at a time."""

    def __init__(self, preload: bool = True) -> None:
        self._preload = preload
        self._idle: list[Zygote] = []
        self._lock = threading.Lock()
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-spawner")

    @contextmanager
    def lend(self, threads: int) -> Iterator[Zygote]:
        zygote = self._take(threads) or Zygote(threads, self._preload, self._spawner)
        healthy = False
        try:
            zygote.ready()
            yield zygote
            healthy = True
        finally:
            if healthy:
                with self._lock:
                    self._idle.append(zygote)
            else:
                zygote.close()  # it may hold a job's answer nobody read

    def prestart(self, threads: int, count: int) -> None:
        """Start warm processes for `count` jobs of `threads` threads at once now, not waiting
        for them: their import of torch (about as long as a bare `import torch`) overlaps
        the grader's own start-up instead of delaying each worker's first job."""
        with self._lock:
            count -= sum(zygote.threads == threads for zygote in self._idle)
        for _ in range(count):
            zygote = Zygote(threads, self._preload, self._spawner)
            with self._lock:
                self._idle.append(zygote)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for zygote in idle:
            zygote.close()
        self._spawner.shutdown()

    def __enter__(self) -> ZygotePool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _take(self, threads: int) -> Zygote | None:
        with self._lock:
            for zygote in self._idle:
                if zygote.threads == threads and zygote.alive():
                    self._idle.remove(zygote)
                    return zygote
        return None
