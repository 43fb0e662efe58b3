"""The sandbox's layers: reported by name, proven from inside real jobs in every mode, and a job
that lacks a promised layer stopped before any student code runs."""

from __future__ import annotations

import copy
import dataclasses
import errno
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.grading import GradeSource
from support.layers import LAYER_NAMES, READ_STATUS, assert_status_shows, require_sandbox, status_in
from support.paths import REPO

from grader.core.results import Result, Status
from grader.protocol import PROTOCOL_VERSION, Attestation, rlimit_pair
from grader.sandbox.box import Sandbox, SandboxError
from grader.sandbox.leases import JOB_UIDS
from grader.sandbox.probe import seccomp_library
from grader.sandbox.supervise import JobOutcome
from grader.sandbox.verify import Promise, breaches


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


def test_every_layer_is_on_as_root_warm_and_cold(sandbox: Sandbox, cold_sandbox: Sandbox) -> None:
    _skip_unless(sandbox, *LAYER_NAMES)
    cold = "bwrap" if shutil.which("bwrap") else "unshare"  # the fallback keeps every layer
    for box, mode in ((sandbox, "forked"), (cold_sandbox, cold)):
        assert _off_layers(box) == []
        assert box.weak_warning() is None
        assert box.identity
        assert box.mode == mode
    assert sandbox.warm and sandbox.launch.startswith("warm: ")
    assert not cold_sandbox.warm and cold_sandbox.launch.startswith("cold: ")


def test_a_disabled_sandbox_names_its_off_layers() -> None:
    sandbox = Sandbox(enabled=False)
    off = ["namespaces", "identity", "cgroups"] + ([] if seccomp_library() else ["seccomp"])
    assert sandbox.mode == "none"
    assert not sandbox.identity
    assert _off_layers(sandbox) == off
    warning = sandbox.weak_warning()
    assert warning is not None
    prefix = "isolation is weak on this machine, student code is less contained: "
    assert warning.startswith(prefix)
    assert [part.split(":")[0] for part in warning[len(prefix) :].split("; ")] == off
    assert "namespaces: OFF (disabled by --no-sandbox)" in warning
    assert "identity: OFF (disabled by --no-sandbox: children run as the grader's user)" in warning
    limits = next(layer for layer in sandbox.layers if layer.name == "limits")
    assert limits.on and "processes" not in limits.detail  # NPROC needs a uid of its own


def test_require_refuses_a_sandbox_with_layers_off() -> None:
    off = ["namespaces", "identity", "cgroups"] + ([] if seccomp_library() else ["seccomp"])
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
    import ctypes, json, platform, socket, sys
    from grader.child.confine import attest, confine
    from grader.protocol import Confinement

    confine(Confinement(json.loads(sys.argv[1]), sys.argv[2]))
    out = {"attested": json.loads(attest().to_line()), "sockets": {}, "syscalls": {}}
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
    print(json.dumps(out))
    """
)
RLIMITS = {
    "RLIMIT_DATA": 3 << 30,
    "RLIMIT_CPU": 77,
    "RLIMIT_FSIZE": 5 << 20,
    "RLIMIT_NOFILE": 99,
    "RLIMIT_CORE": 0,
}


def _confined(rlimits: dict[str, int], library: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CONFINE_PROBE, json.dumps(rlimits), library],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("nproc", [None, 123], ids=["shared-uid", "own-uid"])
def test_confine_applies_rlimits_and_seccomp(sandbox: Sandbox, nproc: int | None) -> None:
    _skip_unless(sandbox, "seccomp")
    library = seccomp_library()
    if library is None:
        pytest.skip("libseccomp or pyseccomp is not installed")
    rlimits = RLIMITS if nproc is None else {**RLIMITS, "RLIMIT_NPROC": nproc}
    probe = _confined(rlimits, library)
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
    attested = probe["attested"]
    assert isinstance(attested, dict)
    assert attested["seccomp"] == 2 and attested["no_new_privs"] == 1
    expected = {name: list(rlimit_pair(name, value)) for name, value in rlimits.items()}
    if nproc is None:  # only meaningful for a uid of the job's own, so left as it was
        expected["RLIMIT_NPROC"] = list(resource.getrlimit(resource.RLIMIT_NPROC))
    assert attested["rlimits"] == expected


# -- the promise, held against an attestation ---------------------------------------------------


def _attestation(**changes: object) -> Attestation:
    honest = Attestation(
        seccomp=2,
        uid=61005,
        gid=61005,
        groups=(),
        cap_effective=0,
        cap_permitted=0,
        cap_bounding=0,
        no_new_privs=1,
        rlimits={"RLIMIT_NOFILE": (64, 64)},
        namespaces={name: f"{name}:[2]" for name in ("ipc", "mnt", "net", "pid", "uts")},
    )
    return dataclasses.replace(honest, **changes)  # type: ignore[arg-type]


PROMISE = Promise(
    rlimits={"RLIMIT_NOFILE": 64},
    seccomp=True,
    uid=61005,
    separate_from={name: f"{name}:[1]" for name in ("ipc", "mnt", "net", "pid", "uts")},
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"seccomp": 0}, [("seccomp", "Seccomp is 0, not 2")]),
        ({"uid": 0}, [("identity", "runs as uid 0 gid 61005 groups [], not 61005")]),
        ({"groups": (0,)}, [("identity", "runs as uid 61005 gid 61005 groups [0], not 61005")]),
        (
            {"cap_bounding": 0x1FF},
            [("identity", "holds capabilities (effective 0, permitted 0, bounding 1ff)")],
        ),
        ({"no_new_privs": 0}, [("identity", "can gain privileges (NoNewPrivs is 0)")]),
        ({"rlimits": {}}, [("limits", "RLIMIT_NOFILE is None, not (64, 64)")]),
        ({"rlimits": {"RLIMIT_NOFILE": (64, 1024)}},
         [("limits", "RLIMIT_NOFILE is (64, 1024), not (64, 64)")]),
        ({"namespaces": {**_attestation().namespaces, "net": "net:[1]", "pid": ""}},
         [("namespaces", "shares the grader's net, pid")]),
        (
            {"failed_layer": "seccomp", "error": "cannot load /x.so (gone)"},
            [("seccomp", "cannot load /x.so (gone)")],
        ),
        ({"protocol": PROTOCOL_VERSION + 1},
         [("child", f"it speaks protocol {PROTOCOL_VERSION + 1}, not {PROTOCOL_VERSION}")]),
    ],
)  # fmt: skip
def test_breaches_name_each_missing_layer(
    changes: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert breaches(_attestation(**changes), PROMISE) == expected


def test_a_job_that_never_attests_is_a_start_breach() -> None:
    assert breaches(None, PROMISE) == [("start", "the job ended before saying what it runs under")]


def test_unpromised_layers_are_not_checked() -> None:
    weak = _attestation(seccomp=0, uid=0, gid=0, cap_effective=0x1FF, no_new_privs=0)
    assert breaches(weak, Promise(rlimits={}, seccomp=False, uid=None, separate_from=None)) == []


# -- inside a real job, in every sandbox mode ---------------------------------------------------


@pytest.fixture(params=["forked", "bwrap", "unshare", "none"])
def any_mode_sandbox(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    """A sandbox in each mode this machine has: warm (forked jobs make their own namespaces);
    bubblewrap; unshare with bwrap hidden from PATH; none (--no-sandbox). CI runs as root with
    bubblewrap installed, so all four run there."""
    mode = request.param
    if mode == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed here")
    if mode == "unshare":
        hidden = tmp_path / "path-without-bwrap"
        hidden.mkdir()
        for tool in ("unshare", "setpriv"):
            found = shutil.which(tool)
            if found:
                (hidden / tool).symlink_to(found)
        monkeypatch.setenv("PATH", str(hidden))
    with Sandbox(enabled=mode != "none", warm=mode == "forked") as sandbox:
        if sandbox.mode != mode:
            if require_sandbox() and os.geteuid() == 0:
                pytest.fail(f"{mode} should be usable here, got {sandbox.mode}: {sandbox.launch}")
            pytest.skip(f"{mode} is not usable on this machine")
        yield sandbox


def _status_inside(result: Result) -> dict[str, str]:
    assert result.status == "error", result.message
    return status_in(result.message)


def test_proc_self_status_inside_a_job_matches_the_layers(
    any_mode_sandbox: Sandbox, grade_source: GradeSource, tmp_path: Path
) -> None:
    sandbox = any_mode_sandbox
    status = _status_inside(grade_source(READ_STATUS, sandbox=sandbox))
    on = {layer.name for layer in sandbox.layers if layer.on}
    assert_status_shows(status, on)
    if require_sandbox() and sandbox.mode != "none":
        assert on == set(LAYER_NAMES), sandbox.layers  # the fallback keeps every layer too


def test_a_layer_that_fails_to_apply_stops_the_job_before_student_code(
    sandbox: Sandbox, grade_source: GradeSource, tmp_path: Path
) -> None:
    _skip_unless(sandbox, "seccomp")
    marker = tmp_path / "student-code-ran"
    source = READ_STATUS.replace("import os", f"import os\nopen({str(marker)!r}, 'w').close()")
    result = grade_source(source, sandbox=_with_seccomp_library(sandbox, _not_a_library(tmp_path)))
    assert result.status is Status.SANDBOX
    assert result.message.startswith(
        f"train was stopped before the submission ran: seccomp: cannot load "
        f"{_not_a_library(tmp_path)} ("
    ), result.message
    assert not marker.exists()


def test_a_missing_layer_fails_the_run_under_require_sandbox(
    sandbox: Sandbox, grade_source: GradeSource, tmp_path: Path
) -> None:
    _skip_unless(sandbox, "seccomp")
    broken = _with_seccomp_library(sandbox, _not_a_library(tmp_path), required=True)
    with pytest.raises(SandboxError, match=r"^--require-sandbox: train was stopped before"):
        grade_source(READ_STATUS, sandbox=broken)


def _not_a_library(folder: Path) -> str:
    path = folder / "libseccomp.so.2"
    path.write_text("not an ELF file")
    path.chmod(0o644)
    return str(path)


def _with_seccomp_library(sandbox: Sandbox, library: str, required: bool = False) -> Sandbox:
    """The same sandbox, promising a filter its jobs cannot load (a machine that changed)."""
    broken = copy.copy(sandbox)
    broken._setup = dataclasses.replace(sandbox._setup, seccomp_library=library)
    broken.required = required
    return broken


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
