"""Grading without bubblewrap, as on most laptops: the same metrics, with each layer said.

`grader run` is run for real, once as it is and once with bwrap hidden from PATH (root then gets
the unshare fallback), and, where the interpreter is reachable for other users, once as an
unprivileged user (no namespaces, no uid of its own, no cgroups)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ASSIGNMENTS, GOOD_HAR, TINY_TEST, TINY_TRAIN, require_sandbox

pytestmark = pytest.mark.slow
METRICS = ["student", "status", "test_accuracy", "train_accuracy", "gap", "params"]
METRICS += ["weights_sha256", "target_a", "target_b"]
NOBODY = 65534


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny HAR data, a small spec and two students, all readable by any user."""
    from data_factories import write_tiny_har

    root = tmp_path_factory.mktemp("fallback")
    root.chmod(0o755)
    write_tiny_har(root / "data", TINY_TRAIN, TINY_TEST)
    (root / "assignments").mkdir()
    spec = (ASSIGNMENTS / "har.toml").read_text().replace("max_epochs = 100", "max_epochs = 5")
    (root / "assignments" / "har.toml").write_text(spec)
    for student, lr in (("ana", "0.01"), ("ben", "0.02")):
        (root / "submissions" / student).mkdir(parents=True)
        source = GOOD_HAR.replace('"lr": 0.01', f'"lr": {lr}')
        (root / "submissions" / student / "har.py").write_text(source)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


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
        setpriv = shutil.which("setpriv")
        assert setpriv is not None
        prefix = [setpriv, f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]
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
    return pd.read_csv(out / "leaderboard.csv"), done.stderr


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
    assert (with_bwrap["status"] == "ok").all(), with_bwrap["message"]
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


def test_as_an_unprivileged_user_without_bubblewrap(course: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    interpreter = Path(os.path.realpath(sys.executable))
    if not all(parent.stat().st_mode & 0o001 for parent in interpreter.parents):
        pytest.skip(f"{interpreter} is not reachable for other users")
    reference, _ = grader_run(course, "as-root")
    graded, stderr = grader_run(
        course, "as-nobody", path=without_bwrap(course / "bin"), user=NOBODY
    )
    pd.testing.assert_frame_equal(reference[METRICS], graded[METRICS])
    off = [line.split(":")[0].removeprefix("sandbox ") for line in layer_lines(stderr)
           if ": OFF (" in line]  # fmt: skip
    assert off[:3] == ["namespaces", "identity", "cgroups"]
    assert "warning: isolation is weak on this machine" in stderr
