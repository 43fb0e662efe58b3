"""The pure builders of what a job sees and how it starts: checked without starting anything."""

from __future__ import annotations

import json
from pathlib import Path

from grader.sandbox import argv, view

TMP = 256 << 20


def plan(tmp_path: Path) -> list[view.Mount]:
    return view.plan(
        visible=[str(tmp_path / "venv"), "/usr/lib/libsomething.so"],
        binds=[(str(tmp_path / "in"), "/job/in", False), (str(tmp_path / "out"), "/job/out", True)],
        tmp_bytes=TMP,
    )


def test_the_view_makes_every_folder_on_the_way_traversable_before_binding(
    tmp_path: Path,
) -> None:
    mounts = plan(tmp_path)
    kinds = [(m.kind, m.target) for m in mounts]
    assert kinds[:3] == [("proc", "/proc"), ("dev", "/dev"), ("tmpfs", "/tmp")]
    folders = {m.target for m in mounts if m.kind == "dir"}
    assert {"/etc", "/job", str(tmp_path)} <= folders  # /etc: the job uid reaches the loader cache
    first_bind = next(i for i, m in enumerate(mounts) if m.kind == "bind")
    assert all(m.kind != "dir" for m in mounts[first_bind:])


def test_the_view_binds_the_job_folders_and_nothing_inside_usr_twice(tmp_path: Path) -> None:
    binds = {m.target: m for m in plan(tmp_path) if m.kind == "bind"}
    assert binds["/job/in"].source == str(tmp_path / "in") and not binds["/job/in"].writable
    assert binds["/job/out"].writable
    assert binds[str(tmp_path / "venv")].source == str(tmp_path / "venv")
    assert "/usr/lib/libsomething.so" not in binds  # inside /usr, which is bound whole
    assert not any(m.writable for t, m in binds.items() if t != "/job/out")


def test_bwrap_gets_the_same_view(tmp_path: Path) -> None:
    mounts = plan(tmp_path)
    command = argv.bwrap("/usr/bin/bwrap", root=True, env={"HOME": "/tmp"}, mounts=mounts)
    text = " ".join(command)
    assert text.startswith("/usr/bin/bwrap --die-with-parent --new-session --clearenv")
    assert "--unshare-net" in command and "--unshare-pid" in command
    assert f"--perms 1777 --size {TMP} --tmpfs /tmp" in text
    assert text.index("--perms 0755 --dir /etc") < text.index("--ro-bind /etc/ld.so.cache")
    assert f"--ro-bind {tmp_path / 'in'} /job/in" in text
    assert f"--bind {tmp_path / 'out'} /job/out" in text
    assert "--setenv HOME /tmp" in text
    assert "--unshare-user" not in command
    assert "--cap-add CAP_SETUID" in text
    unprivileged = argv.bwrap("/usr/bin/bwrap", root=False, env={}, mounts=mounts)
    assert "--unshare-user" in unprivileged and "--cap-add" not in unprivileged


def test_view_data_round_trips() -> None:
    mounts = view.plan(visible=[], binds=[("/a", "/job/in", False)], tmp_bytes=1)
    assert view.from_data(view.to_data(mounts)) == mounts


def test_setpriv_drops_everything() -> None:
    assert argv.setpriv("/usr/bin/setpriv", 61234) == [
        "/usr/bin/setpriv", "--reuid", "61234", "--regid", "61234", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]  # fmt: skip


def test_the_fallback_builds_the_view_it_is_given() -> None:
    mounts = view.plan(visible=[], binds=[("/a", "/job/in", False)], tmp_bytes=1)
    command = argv.private_view("/py", "/w/root", json.dumps(view.to_data(mounts)))
    assert command[:7] == ["/py", "-s", "-B", "-P", "-m", "grader.sandbox.private_view", "/w/root"]
    assert view.from_data(json.loads(command[7])) == mounts
    assert command[8:] == ["--"]


def test_entering_the_cgroup_comes_first() -> None:
    command = argv.enter_cgroup([Path("/sys/fs/cgroup/memory/job/cgroup.procs")])
    assert command[:2] == ["/bin/sh", "-c"]
    assert command[-2:] == ["/sys/fs/cgroup/memory/job/cgroup.procs", "--"]
