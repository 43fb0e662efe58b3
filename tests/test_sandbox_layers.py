"""Unit-level checks of the sandbox: its reported layers, the child-side `confine`, exit-status
decoding, and one uid per concurrent job."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import subprocess
import sys
import textwrap
import threading

import pytest
from conftest import REPO, GradeSource, require_sandbox

from grader.confine import seccomp_available
from grader.grading import Result
from grader.sandbox import JOB_UIDS, JobOutcome, Sandbox, SandboxError

LAYER_NAMES = ["namespaces", "identity", "limits", "cgroups", "seccomp"]


def _off_layers(sandbox: Sandbox) -> list[str]:
    return [layer.name for layer in sandbox.layers if not layer.on]


def _skip_unless(sandbox: Sandbox, *needed: str) -> None:
    """Off layers excuse a check on a developer machine only; CI requires every layer."""
    off = [name for name in _off_layers(sandbox) if name in needed]
    if off and not require_sandbox():
        pytest.skip(f"isolation layer(s) off on this machine: {', '.join(off)}")


# -- layers ---------------------------------------------------------------------------------


def test_layers_are_reported_by_name(sandbox: Sandbox) -> None:
    assert [layer.name for layer in sandbox.layers] == LAYER_NAMES
    for layer in sandbox.layers:
        assert str(layer) == f"{layer.name}: {'on' if layer.on else 'OFF'} ({layer.detail})"
        assert layer.detail


def test_every_layer_is_on_with_bubblewrap_as_root(sandbox: Sandbox) -> None:
    _skip_unless(sandbox, *LAYER_NAMES)
    assert _off_layers(sandbox) == []
    assert sandbox.weak_warning() is None
    assert sandbox.identity


def test_a_disabled_sandbox_names_its_off_layers() -> None:
    sandbox = Sandbox(enabled=False)
    off = ["namespaces", "identity", "cgroups"] + ([] if seccomp_available() else ["seccomp"])
    assert sandbox.mode == "none"
    assert not sandbox.identity
    assert _off_layers(sandbox) == off
    warning = sandbox.weak_warning()
    assert warning is not None
    prefix = "isolation is weak on this machine, student code is less contained: "
    assert warning.startswith(prefix)
    assert [part.split(":")[0] for part in warning[len(prefix) :].split("; ")] == off
    assert "namespaces: OFF (no bubblewrap or unshare usable here)" in warning
    assert "identity: OFF (" in warning
    limits = next(layer for layer in sandbox.layers if layer.name == "limits")
    assert limits.on and "processes" not in limits.detail  # NPROC needs a uid of its own


def test_require_refuses_a_sandbox_with_layers_off() -> None:
    off = ["namespaces", "identity", "cgroups"] + ([] if seccomp_available() else ["seccomp"])
    with pytest.raises(SandboxError) as caught:
        Sandbox(enabled=False, require=True)
    assert str(caught.value) == "--require-sandbox: isolation layers off: " + ", ".join(off)


# -- exit statuses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returncode", "name"),
    [
        (0, None),
        (1, None),
        (7, None),
        (128, None),
        (-9, "SIGKILL"),
        (-11, "SIGSEGV"),
        (-25, "SIGXFSZ"),
        (-24, "SIGXCPU"),
        (128 + 9, "SIGKILL"),
        (128 + 11, "SIGSEGV"),
        (128 + 25, "SIGXFSZ"),
        (128 + 24, "SIGXCPU"),
        (128 + 40, "signal 40"),
        (-40, "signal 40"),
        (128 + 65, None),
        (255, None),
    ],
)
def test_signal_name_decodes_negative_codes_and_128_plus_n(
    returncode: int, name: str | None
) -> None:
    outcome = JobOutcome(returncode, False, False, 0.0, "")
    assert outcome.signal_name == name


# -- confine, in a process of its own -----------------------------------------------------------

CONFINE_PROBE = textwrap.dedent(
    """
    import ctypes, json, platform, resource, socket, sys
    from grader.confine import confine

    applied = confine(sys.argv[1] == "1")
    out = {"applied": applied, "sockets": {}, "syscalls": {}}
    for name, kind in (("AF_INET", socket.SOCK_STREAM), ("AF_INET6", socket.SOCK_DGRAM),
                       ("AF_NETLINK", socket.SOCK_RAW), ("AF_UNIX", socket.SOCK_STREAM)):
        try:
            socket.socket(getattr(socket, name), kind).close()
            out["sockets"][name] = 0
        except OSError as exc:
            out["sockets"][name] = exc.errno
    libc = ctypes.CDLL(None, use_errno=True)
    calls = {
        "ptrace": lambda: libc.ptrace(0, 0, None, None),
        "unshare": lambda: libc.unshare(0x10000000),
        "mount": lambda: libc.mount(b"none", b"/mnt", b"tmpfs", 0, None),
    }
    if platform.machine() == "x86_64":
        calls["clone3"] = lambda: libc.syscall(435, None, 0)
    for name, call in calls.items():
        ctypes.set_errno(0)
        out["syscalls"][name] = [call(), ctypes.get_errno()]
    out["limits"] = {
        name: list(resource.getrlimit(getattr(resource, name)))
        for name in ("RLIMIT_DATA", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE",
                     "RLIMIT_CORE", "RLIMIT_NPROC")
    }
    print(json.dumps(out))
    """
)
PROBE_ENV = {
    "GRADER_MEMORY_BYTES": str(3 << 30),
    "GRADER_CPU_SECONDS": "77",
    "GRADER_MAX_FILE_BYTES": str(5 << 20),
    "GRADER_MAX_OPEN_FILES": "99",
    "GRADER_MAX_PROCESSES": "123",
}


def _confined(identity: bool) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CONFINE_PROBE, "1" if identity else "0"],
        env={**os.environ, **PROBE_ENV},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("identity", [False, True], ids=["shared-uid", "own-uid"])
def test_confine_applies_rlimits_and_seccomp(sandbox: Sandbox, identity: bool) -> None:
    _skip_unless(sandbox, "seccomp")
    probe = _confined(identity)
    assert probe["applied"] == ["rlimits", "seccomp"]
    assert probe["sockets"] == {
        "AF_INET": errno.EACCES,
        "AF_INET6": errno.EACCES,
        "AF_NETLINK": errno.EACCES,
        "AF_UNIX": 0,
    }
    syscalls = probe["syscalls"]
    assert isinstance(syscalls, dict)
    for name in ("ptrace", "unshare", "mount"):
        assert syscalls[name] == [-1, errno.EPERM], name
    if "clone3" in syscalls:
        assert syscalls["clone3"] == [-1, errno.ENOSYS]  # so glibc falls back to filtered clone
    nproc = [123, 123] if identity else list(resource.getrlimit(resource.RLIMIT_NPROC))
    assert probe["limits"] == {
        "RLIMIT_DATA": [3 << 30, 3 << 30],
        "RLIMIT_CPU": [77, 77],
        "RLIMIT_FSIZE": [5 << 20, 5 << 20],
        "RLIMIT_NOFILE": [99, 99],
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_NPROC": nproc,  # only meaningful for a uid of the job's own
    }


# -- one uid per job ----------------------------------------------------------------------------

WHO_AM_I = """
import os, time
time.sleep(4)  # overlap with the other job
raise RuntimeError(f"UID={os.getuid()} GID={os.getgid()} GROUPS={os.getgroups()}")
"""


def test_concurrent_jobs_get_different_uids(sandbox: Sandbox, grade_source: GradeSource) -> None:
    _skip_unless(sandbox, "identity")
    results: dict[str, Result] = {}

    def grade(student: str) -> None:
        results[student] = grade_source(WHO_AM_I, student=student)

    threads = [threading.Thread(target=grade, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    uids = []
    for student, result in sorted(results.items()):
        found = re.fullmatch(
            r"train: RuntimeError: UID=(\d+) GID=(\d+) GROUPS=\[\] \(line 4 of the submission\)",
            result.message,
        )
        assert result.status == "error" and found, (student, result.message)
        uid, gid = int(found.group(1)), int(found.group(2))
        assert uid in JOB_UIDS and gid == uid
        uids.append(uid)
    assert len(set(uids)) == 2, uids
