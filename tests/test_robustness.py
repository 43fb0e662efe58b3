"""No submission can stop the batch: trees deeper than a path may be long, folders a job locked,
a flood of entries, the grader's own errors, and names that are not UTF-8."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from support.course import write_course
from support.grading import GOOD_HAR
from support.runs import options

from grader.api import run
from grader.cli import main
from grader.core.results import Result, Status
from grader.core.submission import Submission, discover
from grader.execute import local
from grader.jobs.grade import GradingContext
from grader.protocol import ChildReport
from grader.sandbox import supervise
from grader.sandbox.box import Sandbox
from grader.sandbox.supervise import MAX_OUTPUT_DEPTH, MAX_OUTPUT_ENTRIES, Limits
from grader.sandbox.tree import remove_tree
from grader.sandbox.workspace import PREFIX, remove_stale_workspaces, workspace
from grader.store.sqlite import Store

DEEP = 3000  # nested folders: a path of them is far longer than PATH_MAX (4096)
FOLDER = os.O_RDONLY | os.O_DIRECTORY
NOBODY = 65534
NO_CAP = 1 << 40


def nest(root: Path, depth: int, name: str = "d", *, data: bytes = b"") -> None:
    """depth folders, each in the one before, made through folder fds (their paths outgrow
    PATH_MAX); a file `f` holding data in the deepest."""
    fd = os.open(root, FOLDER)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            down = os.open(name, FOLDER, dir_fd=fd)
            os.close(fd)
            fd = down
        file = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(file, data)
        os.close(file)
    finally:
        os.close(fd)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder workspaces are made in, this test's own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder an ordinary user may write in (tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="robustness-", dir="/tmp"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder)


def as_ordinary_user(action: Callable[[], bool]) -> bool:
    """action() as an ordinary user, for whom a folder's mode holds (root reads and removes
    whatever the mode): as nobody, in a forked child, when the tests run as root."""
    if os.geteuid() != 0:
        return action()
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = 0 if action() else 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def locked_tree(root: Path, outside: Path) -> None:
    """What a job may leave: unreadable (000) and read-only (500) folders, a deep chain inside
    a locked one, links to what lies outside."""
    (root / "locked" / "sub").mkdir(parents=True)
    (root / "locked" / "f").write_bytes(b"x")
    (root / "locked" / "sub" / "g").write_bytes(b"x")
    nest(root / "locked" / "sub", 200)
    (root / "read-only").mkdir()
    (root / "read-only" / "h").write_bytes(b"x")
    (root / "link").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "keep")
    for folder, mode in [("locked/sub", 0), ("locked", 0), ("read-only", 0o500)]:
        (root / folder).chmod(mode)


# -- removing what a job left ---------------------------------------------------------------------


def test_a_tree_deeper_than_paths_may_be_long_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "job"
    root.mkdir()
    nest(root, DEEP, "folder", data=b"x" * 100)
    fds = open_fds()
    remove_tree(root)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []
    assert open_fds() <= fds  # none left open (others' may close meanwhile)


@pytest.mark.parametrize("remover", ["owner", "grader"])
def test_folders_a_job_locked_are_removed_and_links_not_followed(
    shared_dir: Path, remover: str
) -> None:
    """The job's own uid (a grader without root runs jobs as itself) or, as root, the grader
    removes what the job's uid locked."""
    outside = shared_dir / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"kept")
    root = shared_dir / "job"

    def make() -> bool:
        root.mkdir()
        locked_tree(root, outside)
        return True

    def remove() -> bool:
        remove_tree(root)
        return not root.exists()

    assert as_ordinary_user(make)
    assert (root / "read-only").stat().st_mode & 0o777 == 0o500
    assert as_ordinary_user(remove) if remover == "owner" else remove()
    assert not root.exists()
    assert (outside / "keep").read_bytes() == b"kept"


def test_a_file_or_a_link_is_removed_itself(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_bytes(b"kept")
    (tmp_path / "link").symlink_to(target)
    remove_tree(tmp_path / "link")
    remove_tree(tmp_path / "missing")
    assert [p.name for p in tmp_path.iterdir()] == ["target"]
    assert (target / "keep").read_bytes() == b"kept"


def test_a_workspace_is_removed_with_what_its_job_left(temp_dir: Path) -> None:
    with workspace() as folder:
        out = folder / "eval" / "out"
        out.mkdir(parents=True)
        nest(out, DEEP)
        (out / "d").chmod(0)
    assert list(temp_dir.iterdir()) == []


def test_a_deep_leftover_of_a_dead_grader_never_stops_a_later_run(temp_dir: Path) -> None:
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process has this id
    leftover = temp_dir / f"{PREFIX}{dead}-abc123"
    live = temp_dir / f"{PREFIX}{os.getpid()}-def456"
    for folder in (leftover, live):
        (folder / "eval" / "out").mkdir(parents=True)
    nest(leftover / "eval" / "out", DEEP)
    (leftover / "eval").chmod(0)
    remove_stale_workspaces()
    assert [p.name for p in temp_dir.iterdir()] == [live.name]


# -- the output check -----------------------------------------------------------------------------


def test_output_past_the_depth_cap_is_over_the_cap(tmp_path: Path) -> None:
    at_cap, past = tmp_path / "at-cap", tmp_path / "past"
    at_cap.mkdir()
    past.mkdir()
    nest(at_cap, MAX_OUTPUT_DEPTH - 1)  # its file `f` is MAX_OUTPUT_DEPTH levels down
    nest(past, MAX_OUTPUT_DEPTH)
    assert not supervise.overflow(at_cap, NO_CAP)
    assert supervise.overflow(past, NO_CAP)


def test_output_past_the_entry_cap_is_over_the_cap(tmp_path: Path) -> None:
    for name in range(MAX_OUTPUT_ENTRIES):
        (tmp_path / str(name)).touch()
    assert not supervise.overflow(tmp_path, NO_CAP)
    (tmp_path / "one-more").mkdir()
    assert supervise.overflow(tmp_path, NO_CAP)


def test_output_beyond_path_max_is_measured_in_full(tmp_path: Path) -> None:
    """Twenty folders of 250-character names: the file at the bottom has a path of over 5000
    characters, which no path-based walk can open."""
    nest(tmp_path, 20, "n" * 250, data=b"\1" * (1 << 20))
    assert supervise.overflow(tmp_path, 1 << 19)
    assert not supervise.overflow(tmp_path, 4 << 20)


def test_output_in_a_folder_the_job_locked_is_measured(shared_dir: Path) -> None:
    out = shared_dir / "out"

    def make_and_measure() -> bool:
        out.mkdir()
        nest(out, 2, data=b"\1" * (1 << 20))
        (out / "d").chmod(0)
        return supervise.overflow(out, 1 << 19)

    assert as_ordinary_user(make_and_measure)


JOB = """
import os, sys, time
os.chdir(sys.argv[1])
what, count, then = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
for n in range(count):
    if what == "nested":
        os.mkdir("d")
        os.chdir("d")
    else:
        open(str(n), "w").close()
time.sleep(then)
"""
LIMITS = Limits(
    timeout_seconds=60,
    memory_bytes=1 << 30,
    max_processes=64,
    max_file_bytes=1 << 30,
    max_open_files=64,
    max_output_bytes=64 << 20,
)


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Path]:
    """A job's output folder, removed after the test: pytest's own cleanup recurses."""
    folder = tmp_path / "out"
    folder.mkdir()
    yield folder
    remove_tree(folder)


def watched(out: Path, what: str, count: int, then: float) -> tuple[bool, bool, float]:
    """Run a process that makes `count` folders or files in out, then sleeps `then` seconds;
    (timed out, output exceeded, seconds) as the watchdog saw it."""
    started = time.monotonic()
    argv = [sys.executable, "-c", JOB, str(out), what, str(count), str(then)]
    process = subprocess.Popen(argv, start_new_session=True)
    timed_out, overflow = supervise.watch(process, out, LIMITS, started + 30)
    return timed_out, overflow is not None, time.monotonic() - started


@pytest.mark.parametrize(
    ("what", "count"), [("nested", DEEP), ("files", MAX_OUTPUT_ENTRIES + 1000)]
)
def test_the_watchdog_kills_a_job_whose_output_is_too_deep_or_too_many(
    out: Path, what: str, count: int
) -> None:
    timed_out, exceeded, seconds = watched(out, what, count, then=60)
    assert (timed_out, exceeded) == (False, True)
    assert seconds < 20


def test_what_a_job_left_as_it_ended_counts(out: Path) -> None:
    assert watched(out, "nested", DEEP, then=0)[:2] == (False, True)


def test_a_modest_output_passes_the_watchdog(out: Path) -> None:
    assert watched(out, "nested", MAX_OUTPUT_DEPTH - 1, then=0.6)[:2] == (False, False)


# -- names that are not UTF-8 -------------------------------------------------------------------


def test_a_folder_name_that_is_not_utf8_is_a_row_with_the_name_escaped(tmp_path: Path) -> None:
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xff")
    os.mkdir(folder)
    with open(os.path.join(folder, b"har.py"), "w") as source:
        source.write(GOOD_HAR)
    (submission,) = discover(tmp_path, ["har"], 1 << 20)
    assert submission.student == "caf\\xff"
    assert submission.problem == (
        "folder name 'caf\\xff' is not UTF-8; rename the folder to the student's id"
    )


def test_a_lone_surrogate_in_a_childs_report_can_be_stored(tmp_path: Path) -> None:
    """JSON can spell a lone surrogate, which SQLite cannot store: a report that says one
    must not end the run when its row is recorded."""
    report = ChildReport.parse(json.loads('{"status": "error", "message": "bad \\udcff \\ud800"}'))
    assert report is not None
    assert report.message == "bad \\udcff \\ud800"
    store = Store(tmp_path / "grades.sqlite")
    store.record(Result("ana", "har", Status.ERROR, message=report.message))
    assert [r.message for r in store.latest()] == ["bad \\udcff \\ud800"]


# -- whole runs -----------------------------------------------------------------------------------


def board_rows(out: Path) -> dict[str, tuple[str, str]]:
    board = pd.read_csv(out / "leaderboard.csv", keep_default_na=False)
    return {row.student: (row.status, row.message) for row in board.itertuples()}


@pytest.mark.slow
def test_an_error_of_the_grader_is_that_submissions_row_and_the_batch_goes_on(
    tmp_path: Path, tiny_data_dir: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = write_course(tmp_path, tiny_data_dir)
    shutil.rmtree(course["submissions"] / "cy")
    real_grade = local.grade

    def grade(sub: Submission, ctx: GradingContext, box: Sandbox) -> Result:
        if sub.student == "ben":
            raise OSError(errno.EIO, "Input/output error", "weird-file")
        return real_grade(sub, ctx, box)

    monkeypatch.setattr(local, "grade", grade)
    summary = run(options(course), sandbox, lambda _: None)
    assert summary.graded == 2
    rows = board_rows(course["out"])
    assert rows["ana"][0] == "ok"
    assert rows["ben"] == (
        "crashed",
        "the grader failed while grading this submission: "
        "OSError: [Errno 5] Input/output error: 'weird-file'",
    )


@pytest.mark.slow
def test_a_run_with_names_that_are_not_utf8_exits_zero_and_writes_the_board(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    course = write_course(tmp_path, tiny_data_dir)
    for student in ("ben", "cy"):
        shutil.rmtree(course["submissions"] / student)
    submissions = os.fsencode(course["submissions"])
    bad = os.path.join(submissions, b"caf\xff")
    os.mkdir(bad)
    for folder in (bad, os.path.join(submissions, b"ana")):
        for name in (b"har\xff.safetensors", b"notes-\xe9.txt"):
            with open(os.path.join(folder, name), "wb") as extra:
                extra.write(b"\0" * 64)
    with open(os.path.join(bad, b"har.py"), "w") as source:
        source.write(GOOD_HAR)
    args = [
        "run", str(course["submissions"]), "--out", str(course["out"]),
        "--assignments", str(course["assignments"]), "--data-dir", str(course["data"]),
        "--cache-dir", str(course["cache"]), "--workers", "1",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = board_rows(course["out"])
    assert rows["ana"][0] == "ok"
    assert rows["caf\\xff"][0] == "invalid"
    assert "rename the folder" in rows["caf\\xff"][1]
