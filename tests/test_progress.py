"""Progress on the terminal: a failed submission stays on screen above the bar, and a
terminal that reports no width gets a line per submission instead of a bar."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pytest
from support.results import failed, ok

from grader.publish.progress import RunProgress


@contextmanager
def terminal(columns: int) -> Iterator[tuple[IO[str], int]]:
    """A pty of this many columns: the stream a run writes to, and the end a screen reads."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        with os.fdopen(follower, "w", closefd=False) as stream:
            yield stream, leader
    finally:
        os.close(leader)
        os.close(follower)


def screen(leader: int) -> str:
    return os.read(leader, 1 << 16).decode()


def test_a_failed_submission_is_a_line_above_the_bar() -> None:
    stream = io.StringIO()
    progress = RunProgress(stream, bar=True)
    progress(ok("ann", 0.97, assignment="har"), 1, 3)
    progress(failed("bob", "error", assignment="har", message="NameError (line 4)"), 2, 3)
    progress(ok("cyd", 0.98, assignment="har"), 3, 3)
    lines = stream.getvalue().replace("\r", "\n").splitlines()
    assert "bob/har: error: NameError (line 4)" in lines  # a line of its own
    assert not any("ann/har: ok, test" in line for line in lines)  # the bar says those
    assert "3/3" in lines[-1] or "3/3" in lines[-2]


@pytest.mark.parametrize(("columns", "bar"), [(100, True), (0, False)])
def test_a_terminal_without_a_width_gets_lines(
    monkeypatch: pytest.MonkeyPatch, columns: int, bar: bool
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    with terminal(columns) as (stream, leader):
        progress = RunProgress(stream)
        progress(ok("ann", 0.9712, assignment="har"), 1, 1)
        stream.flush()
        shown = screen(leader)
    assert progress.bar is bar
    if bar:
        assert "grading: 100%" in shown
    else:
        assert shown.startswith("[1/1] ann/har: ok, test 97.12%")
