"""Grading without bubblewrap, as on most laptops: the same metrics, with each layer said.

`grader run` is run for real, once as it is and once with bwrap hidden from PATH (root then gets
the unshare fallback), and, where the interpreter is reachable for other users, once as an
unprivileged user who cannot make user namespaces (no namespaces, no uid of its own, no
cgroups; Landlock, seccomp and the limits remain). In each, a job reads its own
/proc/self/status, which must show exactly the layers the terminal said were on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from support.course import without_baselines
from support.grading import GOOD_HAR, TINY_TEST, TINY_TRAIN
from support.layers import READ_STATUS, assert_status_shows, require_sandbox, status_in
from support.paths import ASSIGNMENTS

from grader.sandbox.probe import landlock_abi, seccomp_library
from grader.sandbox.tree import remove_tree

pytestmark = pytest.mark.slow
METRICS = ["student", "status", "test_accuracy", "train_accuracy", "gap", "params"]
METRICS += ["weights_sha256", "target_a", "target_b"]
NOBODY = 65534
LAUNCHER = Path(__file__).parent / "support" / "unprivileged.py"


@pytest.fixture(scope="module")
def course() -> Iterator[Path]:
    """Tiny HAR data, a small spec and two students, all readable by any user (outside
    pytest's own temp folders, which only their owner may enter)."""
    from support.data import write_tiny_har

    root = Path(tempfile.mkdtemp(prefix="fallback-"))
    root.chmod(0o755)
    write_tiny_har(root / "data", TINY_TRAIN, TINY_TEST)
    (root / "assignments").mkdir()
    spec = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    spec = spec.replace("max_epochs = 100", "max_epochs = 5")
    (root / "assignments" / "har.toml").write_text(spec)
    for student, lr in (("ana", "0.01"), ("ben", "0.02")):
        (root / "submissions" / student).mkdir(parents=True)
        source = GOOD_HAR.replace('"lr": 0.01', f'"lr": {lr}')
        (root / "submissions" / student / "har.py").write_text(source)
    (root / "submissions" / "zz_status").mkdir()
    (root / "submissions" / "zz_status" / "har.py").write_text(READ_STATUS)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield root
    remove_tree(root)


def grader_run(
    course: Path, name: str, *extra: str, path: str | None = None, user: int | None = None
) -> tuple[pd.DataFrame, str]:
    out = course / name
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    env = {**os.environ, "GRADER_REQUIRE_SANDBOX": "", "GRADER_CACHE_DIR": str(out / "cache")}
    if path is not None:
        env["PATH"] = path
    prefix: list[str] = []
    if user is not None:
        prefix = [sys.executable, str(LAUNCHER), str(user), "--"]
        env["HOME"] = str(out)
    args = ["run", str(course / "submissions"), "--out", str(out), "--workers", "2"]
    args += ["--assignments", str(course / "assignments"), "--data-dir", str(course / "data")]
    args += extra
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "grader.cli", *args],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    board = pd.read_csv(out / "leaderboard.csv")
    on = {line.split(":")[0].removeprefix("sandbox ") for line in layer_lines(done.stderr)
          if ": on (" in line}  # fmt: skip
    message = board.loc[board.student == "zz_status", "message"].iloc[0]
    assert_status_shows(status_in(message), on, user)
    return board, done.stderr


def layer_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("sandbox ")]


def without_bwrap(folder: Path) -> str:
    """A PATH with the tools the fallback uses and no bwrap."""
    folder.mkdir(exist_ok=True)
    for tool in ("unshare", "setpriv"):
        found = shutil.which(tool)
        if found and not (folder / tool).exists():
            (folder / tool).symlink_to(found)
    return str(folder)


def test_without_bubblewrap_the_metrics_are_the_same_and_the_terminal_says_so(
    course: Path,
) -> None:
    if shutil.which("bwrap") is None:
        if require_sandbox():
            pytest.fail("bubblewrap should be installed here")
        pytest.skip("bubblewrap is not installed: nothing to compare the fallback with")
    hidden = without_bwrap(course / "bin")
    with_bwrap, first = grader_run(course, "with-bwrap", "--no-warm")
    fallback, second = grader_run(course, "without-bwrap", "--no-warm", path=hidden)
    warm, third = grader_run(course, "warm-without-bwrap", path=hidden)
    graded = with_bwrap[with_bwrap.student != "zz_status"]
    assert (graded["status"] == "ok").all(), graded["message"]
    pd.testing.assert_frame_equal(with_bwrap[METRICS], fallback[METRICS])
    pd.testing.assert_frame_equal(with_bwrap[METRICS], warm[METRICS])
    assert "sandbox namespaces: on (bubblewrap:" in layer_lines(first)[0]
    if os.geteuid() == 0:
        assert "jobs: warm: " in third  # the warm path needs no bubblewrap
    if os.geteuid() == 0:
        assert layer_lines(second)[0].startswith("sandbox namespaces: on (unshare fallback:")
        if require_sandbox():
            assert all(": on (" in line for line in layer_lines(second)), second
    else:
        assert layer_lines(second)[0].startswith("sandbox namespaces: OFF (")
        assert "warning: isolation is weak on this machine" in second


def test_as_an_unprivileged_user_without_user_namespaces(course: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    import grader

    for needed in (Path(os.path.realpath(sys.executable)), Path(grader.__file__)):
        if not all(parent.stat().st_mode & 0o001 for parent in needed.parents):
            why = f"{needed} is not reachable for other users"  # .ci/run makes it reachable
            if require_sandbox():
                pytest.fail(why)
            pytest.skip(why)
    reference, _ = grader_run(course, "as-root")
    graded, stderr = grader_run(course, "as-nobody", user=NOBODY)  # bwrap, if any, cannot start
    pd.testing.assert_frame_equal(reference[METRICS], graded[METRICS])
    off = [line.split(":")[0].removeprefix("sandbox ") for line in layer_lines(stderr)
           if ": OFF (" in line]  # fmt: skip
    weak = ["seccomp"] * (seccomp_library() is None) + ["landlock"] * (landlock_abi() == 0)
    assert off == ["namespaces", "identity", "cgroups", *weak]
    assert "warning: isolation is weak on this machine" in stderr
