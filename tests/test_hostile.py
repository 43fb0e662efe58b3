"""Hostile submissions: every case tries to break out of, cheat, or take down the grader.

One grading run (`grader.runner.run`, two workers) grades every hostile case as its own student,
next to well-behaved control students; each case then checks its own row of the leaderboard.
A case passes when its row is a clear failure, or an `ok` row whose accuracy shows the attack
gained nothing (it equals the matching control's). Cases whose attack currently works are marked
`xfail(strict=True)` with what leaks: they describe the behaviour the sandbox must have.

Hostile code only knows a host path when it is templated into its source (`{{name}}` below).
Code that detects a successful attack raises `Leak`, so its row reads `error ... LEAK ...`.
No code here sends traffic anywhere but the loopback interface.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save
from support.course import without_baselines
from support.grading import GOOD_HAR, GradeSource
from support.inert import hidden
from support.layers import require_sandbox
from support.paths import ASSIGNMENTS

from grader.api import RunOptions, run
from grader.core.results import Mode
from grader.core.spec import load_spec, load_specs
from grader.data.cache import PreparedData
from grader.data.registry import prepare
from grader.publish.board import CSV_NAME, build_board
from grader.publish.export import write_csv
from grader.publish.ranking import ranked, similar_to
from grader.sandbox.box import Sandbox
from grader.sandbox.leases import JOB_UIDS
from grader.sandbox.tree import remove_tree
from grader.store.sqlite import DB_NAME, Store

pytestmark = pytest.mark.slow

TOKEN = uuid.uuid4().hex  # in every hostile source: tells this suite's jobs from other runs'
TIMEOUT_S, MEMORY_MB, OUTPUT_MB = 30, 2048, 16
N_TRAIN, N_TEST = 120, 60
N_BLIND = N_TRAIN + 3 * N_TEST  # the eval job's one array: training, test, copies, repeats
PWNED = "PWNED-" + TOKEN[:8]

# The submission knows which phase it runs in: `python -m grader.child PHASE IN OUT ...`
# (grader.protocol.child_argv).
PRELUDE = '''
# hostile-suite token: {{token}}
import os as _os
import sys as _sys

PHASE = _sys.argv[1] if len(_sys.argv) > 1 else "none"
# The job's folders: /job/in and /job/out in a view of its own, host paths where it has none.
IN_DIR, OUT_DIR = _sys.argv[2:4] if len(_sys.argv) > 3 else ("/job/in", "/job/out")


class Leak(Exception):
    """The attack worked: the row's message then says LEAK."""


def leak(what):
    raise Leak("LEAK " + str(what))


def on_save(transform):
    """Route the child's numpy.save of its score files through transform(path, array, real)."""
    import numpy

    real = numpy.save

    def save(file, arr, *args, **kwargs):
        if transform(str(file), arr, real):
            return None
        return real(file, arr, *args, **kwargs)

    numpy.save = save


def predict_labels(labels):
    """Stolen test labels: the blind array hides which rows they would answer, so reading them
    at all is the leak."""
    leak(f"read {len(labels)} test labels")
'''


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    code: str  # appended to GOOD_HAR + PRELUDE
    check: Callable[[pd.Series, HostileRun], None]
    # "good": good safetensors beside it, so only the eval job runs; None: retrain
    weights: str | None = "good"
    layers: tuple[str, ...] = ("namespaces", "identity", "limits", "seccomp")
    leaks: str | None = None  # a known weakness: xfail(strict=True) with this reason


# -- what a row must look like ------------------------------------------------------------------


def fails(status: str, pattern: str) -> Callable[[pd.Series, HostileRun], None]:
    def check(row: pd.Series, _run: HostileRun) -> None:
        assert (row.status, "LEAK" in row.message) == (status, False), row.message
        assert re.fullmatch(pattern, row.message), row.message
        assert pd.isna(row.test_accuracy)

    return check


def honest(control: str) -> Callable[[pd.Series, HostileRun], None]:
    """An ok row that equals the control graded the same way: the attack gained nothing."""

    def check(row: pd.Series, run: HostileRun) -> None:
        reference = run.row(control)
        assert row.status == "ok", row.message
        assert reference.status == "ok", reference.message
        assert row.test_accuracy < 0.9
        keys = ["test_accuracy", "train_accuracy", "weights_sha256", "params"]
        assert row[keys].tolist() == reference[keys].tolist()

    return check


HONEST_LOADED = honest("control_loaded")
HONEST_RETRAINED = honest("control_good")


def contained(*statuses: str, pattern: str = ".*") -> Callable[[pd.Series, HostileRun], None]:
    def check(row: pd.Series, _run: HostileRun) -> None:
        assert row.status in statuses, row.message
        assert "LEAK" not in row.message
        if row.status == "error":
            assert re.fullmatch(pattern, row.message), row.message
        assert pd.isna(row.test_accuracy)

    return check


def chance_accuracy(row: pd.Series, run: HostileRun) -> None:
    """Scores that always say class 0 earn exactly the share of class 0, whatever is claimed."""
    assert row.status == "ok", row.message
    test = float(np.mean(run.data.load("test_labels") == 0))
    train = float(np.mean(run.data.load("train_labels") == 0))
    assert (row.test_accuracy, row.train_accuracy) == (round(test, 6), round(train, 6))


def no_control_characters(row: pd.Series, _run: HostileRun) -> None:
    """Messages reach the TA's terminal (`grader run`, `grader check`): no escape sequences."""
    assert row.status == "error", row.message
    assert "LEAK" not in row.message
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", row.message), repr(row.message)


# -- the cases ----------------------------------------------------------------------------------

LABELS = [
    Case(
        "labels_private_npy",
        """
if PHASE == "eval":
    import numpy
    try:
        predict_labels(numpy.load({{private_labels}}))
    except OSError:
        pass
""",
        HONEST_LOADED,
        layers=("namespaces|landlock",),
    ),
    Case(
        "labels_raw_txt",
        """
if PHASE == "eval":
    try:
        with open({{raw_labels}}) as _f:
            predict_labels([int(v) - 1 for v in _f.read().split()])
    except OSError:
        pass
""",
        HONEST_LOADED,
        layers=("namespaces|landlock",),
    ),
    Case(
        "labels_in_job_dir",
        """
if PHASE == "eval":
    import numpy
    for _name in _os.listdir(IN_DIR):
        if "label" in _name or "test_labels" in _name:
            leak("the eval job holds " + _name)
    try:
        predict_labels(numpy.load(_os.path.join(IN_DIR, "test_labels.npy")))
    except OSError:
        pass
""",
        HONEST_LOADED,
        layers=(),
    ),
    Case(
        "labels_search_filesystem",
        """
if PHASE == "eval":
    import numpy
    _skip = ("/proc", "/sys", "/dev", "/usr", _sys.prefix, _sys.base_prefix)
    _wanted = ("test_labels.npy", "y_test.txt", "grades.sqlite", "leaderboard.csv")
    for _root, _dirs, _files in _os.walk("/"):
        _dirs[:] = [d for d in _dirs if not _os.path.join(_root, d).startswith(_skip)]
        for _name in set(_files) & set(_wanted):
            _path = _os.path.join(_root, _name)
            try:
                with open(_path, "rb") as _f:
                    _f.read(1)
            except OSError:
                continue
            leak("could read " + _path)
""",
        HONEST_LOADED,
        layers=("namespaces|landlock",),
    ),
    Case(
        "read_grader_memory",
        """
if PHASE == "eval":
    _secrets = [{{private_dir}}, {{data_dir}}, {{cache_dir}}, {{token}}, "test_labels"]
    for _pid in [p for p in _os.listdir("/proc") if p.isdigit() and int(p) != _os.getpid()]:
        for _part in ("mem", "environ"):
            try:
                with open(f"/proc/{_pid}/{_part}", "rb") as _f:
                    _data = _f.read(1 << 16)
            except OSError:
                continue
            leak(f"/proc/{_pid}/{_part} is readable: {_data[:60]!r}")
        try:
            with open(f"/proc/{_pid}/cmdline", "rb") as _f:
                _cmdline = _f.read().decode(errors="replace")
        except OSError:
            continue
        for _secret in _secrets:
            if _secret in _cmdline:
                leak(f"/proc/{_pid}/cmdline names {_secret}")
    try:
        with open(f"/proc/{_os.getppid()}/mem", "rb") as _f:
            leak("the parent's memory is readable")
    except OSError:
        pass
""",
        HONEST_LOADED,
    ),
    Case(
        "read_environment",
        """
if PHASE == "eval":
    _forbidden = {"GRADER_DATA_DIR", "GRADER_CACHE_DIR", "HOSTILE_SUITE_SECRET",
                  "PYTEST_CURRENT_TEST", "GRADER_REQUIRE_SANDBOX"}
    _secrets = [{{private_dir}}, {{data_dir}}, {{cache_dir}}, {{token}}]
    for _key, _value in _os.environ.items():
        if _key in _forbidden or any(s in _value for s in _secrets):
            leak(f"the environment has {_key}={_value}")
""",
        HONEST_LOADED,
        layers=(),
    ),
    Case(
        "proc_listing",
        """
if PHASE == "eval":
    _others = [int(p) for p in _os.listdir("/proc") if p.isdigit()]
    _others = [p for p in _others if p not in (1, _os.getpid())]
    if _others:
        leak(f"sees {len(_others)} other processes, e.g. {_others[:5]}")
    with open("/proc/1/cmdline", "rb") as _f:
        _init = _os.path.basename(_f.read().split(b"\\0")[0])
    if _os.getpid() != 1 and _init.startswith((b"python", b"pytest", b"grader")):
        leak("pid 1 is the grader: " + _init.decode(errors="replace"))
""",
        HONEST_LOADED,
    ),
    Case(
        "read_outside_files",
        """
if PHASE == "eval":
    for _path in ({{leaderboard}}, {{grades}}, {{other_source}}, {{other_notes}},
                  {{tmp_canary}}, {{out_canary}}, {{private_labels}}, {{other_course}},
                  {{cached_inputs}}):
        try:
            with open(_path, "rb") as _f:
                _f.read(1)
        except OSError:
            continue
        leak("could read " + _path)
""",
        HONEST_LOADED,
        layers=("namespaces|landlock",),
    ),
]

NETWORK_LAYERS = ("namespaces|seccomp|landlock",)
NETWORK = [
    Case(
        "net_tcp_grader_host",
        """
if PHASE == "eval":
    import socket
    try:
        _conn = socket.create_connection(("127.0.0.1", {{port}}), timeout=3)
    except OSError:
        pass
    else:
        _conn.sendall(b"stolen")
        leak("connected to the grader host's 127.0.0.1:{{port}}")
""",
        HONEST_LOADED,
        layers=NETWORK_LAYERS,
    ),
    Case(
        "net_localhost",
        """
if PHASE == "eval":
    import ipaddress
    import socket
    try:
        _infos = socket.getaddrinfo("localhost", {{port}}, type=socket.SOCK_STREAM)
    except OSError:
        _infos = []
    for _family, _kind, _proto, _, _addr in _infos:
        if not ipaddress.ip_address(_addr[0].split("%")[0]).is_loopback:
            continue  # never anything but loopback
        try:
            _sock = socket.socket(_family, _kind, _proto)
            _sock.settimeout(3)
            _sock.connect(_addr)
        except OSError:
            continue
        leak(f"connected to localhost {_addr}")
""",
        HONEST_LOADED,
        layers=NETWORK_LAYERS,
    ),
    Case(
        "net_inet_sockets",
        """
if PHASE == "eval":
    import socket
    for _name, _kind in (("AF_INET", socket.SOCK_STREAM), ("AF_INET6", socket.SOCK_STREAM),
                         ("AF_INET", socket.SOCK_DGRAM), ("AF_PACKET", socket.SOCK_RAW),
                         ("AF_NETLINK", socket.SOCK_RAW)):
        try:
            _sock = socket.socket(getattr(socket, _name), _kind)
        except OSError:
            continue
        _sock.close()
        leak(f"socket({_name}, {_kind!r}) was created")
    try:
        _sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        pass
    else:
        _sock.sendto(b"x", ("127.0.0.2", {{port}}))  # loopback only
        leak("sent a datagram to 127.0.0.2")
""",
        HONEST_LOADED,
        layers=("seccomp",),
    ),
]

SECCOMP = [
    Case(
        "seccomp_ptrace",
        """
if PHASE == "eval":
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.ptrace(0, 0, None, None) == 0:  # PTRACE_TRACEME
        leak("ptrace(PTRACE_TRACEME) succeeded")
    if _libc.ptrace(16, 1, None, None) == 0:  # PTRACE_ATTACH to pid 1
        leak("ptrace(PTRACE_ATTACH, 1) succeeded")
""",
        HONEST_LOADED,
        layers=("seccomp",),
    ),
    Case(
        "seccomp_unshare",
        """
if PHASE == "eval":
    import ctypes
    import platform
    _NEWUSER = 0x10000000
    _libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(_os, "unshare"):
        try:
            _os.unshare(_NEWUSER)
        except OSError:
            pass
        else:
            leak("os.unshare(CLONE_NEWUSER) succeeded")
    if _libc.unshare(_NEWUSER) == 0:
        leak("unshare(CLONE_NEWUSER) succeeded")
    if platform.machine() == "x86_64":
        _pid = _libc.syscall(56, _NEWUSER | 17, 0, 0, 0, 0)  # raw clone(CLONE_NEWUSER|SIGCHLD)
        if _pid == 0:
            _os._exit(0)
        if _pid > 0:
            _os.waitpid(_pid, 0)
            leak("clone(CLONE_NEWUSER) succeeded")
""",
        HONEST_LOADED,
        layers=("seccomp",),
    ),
    Case(
        "seccomp_mount",
        """
if PHASE == "eval":
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0:
        leak("mount succeeded")
    if _libc.umount2(IN_DIR.encode(), 2) == 0:
        leak("umount2 succeeded")
    if _libc.chroot(b"/tmp") == 0:
        leak("chroot succeeded")
""",
        HONEST_LOADED,
        layers=("seccomp",),
    ),
]

RESOURCES = [
    Case(
        "memory_bomb",
        """
if PHASE == "train":
    _hoard = []
    while True:
        _hoard.append(bytearray(64 << 20))
""",
        fails("memory", r"train: ran out of memory \(MemoryError.*\)"),
        weights=None,
        layers=("limits",),
    ),
    Case(
        "memory_shared_mmap",
        """
if PHASE == "train":
    import mmap
    _size = 3 << 30
    try:
        _area = mmap.mmap(-1, _size)  # MAP_SHARED | MAP_ANONYMOUS
        _chunk = b"\\1" * (64 << 20)
        for _ in range(_size // len(_chunk)):
            _area.write(_chunk)
    except OSError as _exc:
        raise MemoryError(str(_exc)) from None
    leak(f"touched {_size >> 20} MB of shared memory with a {{memory_mb}} MB budget")
""",
        contained("memory", "crashed"),
        weights=None,
        layers=("cgroups",),  # memory of several processes, or shared
    ),
    Case(
        "memory_fork_split",
        """
if PHASE == "train":
    import resource
    import time

    def _vmdata():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) << 10
        return 0

    _limit = resource.getrlimit(resource.RLIMIT_DATA)[0]
    _limit = _limit if _limit > 0 else 4 << 30
    _readers, _pids = [], []
    for _ in range(3):
        _r, _w = _os.pipe()
        _pid = _os.fork()
        if _pid == 0:
            _os.close(_r)
            try:  # as much as this one process may have, at most 1.5 GB
                _share = min(max(0, _limit - _vmdata() - (256 << 20)), 1536 << 20)
                _block = bytearray(_share)
                _block[::4096] = b"\\1" * len(range(0, _share, 4096))
            except MemoryError:
                _share = 0
            _os.write(_w, str(_share).encode().ljust(16))
            time.sleep(60)
            _os._exit(0)
        _os.close(_w)
        _readers.append(_r)
        _pids.append(_pid)
    _held = sum(int(_os.read(r, 16) or b"0") for r in _readers)
    for _pid in _pids:
        _os.kill(_pid, 9)
        _os.waitpid(_pid, 0)
    if _held > {{memory_mb}} << 20:
        leak(f"3 forked processes held {_held >> 20} MB together, budget {{memory_mb}} MB")
    raise MemoryError(f"3 forked processes could hold only {_held >> 20} MB together")
""",
        contained("memory", "crashed"),
        weights=None,
        layers=("cgroups",),  # memory of several processes, or shared
    ),
    Case(
        "fork_bomb",
        """
if PHASE == "train":
    import time
    _main = _os.getpid()
    while True:
        try:
            _os.fork()
        except OSError as _exc:
            if _os.getpid() == _main:
                raise RuntimeError(f"FORK_BOMB_STOPPED: {_exc.strerror}") from None
            time.sleep(3600)
""",
        contained(
            "error",
            "crashed",
            "timeout",
            pattern=r"train: RuntimeError: FORK_BOMB_STOPPED: Resource temporarily unavailable.*",
        ),
        weights=None,
        layers=("identity", "limits"),
    ),
    Case(
        "thread_bomb",
        """
if PHASE == "train":
    import threading
    _gate = threading.Event()
    try:
        while True:
            threading.Thread(target=_gate.wait, daemon=True).start()
    except RuntimeError as _exc:
        raise RuntimeError(f"THREAD_BOMB_STOPPED: {_exc}") from None
""",
        contained(
            "error",
            "crashed",
            "timeout",
            pattern=r"train: RuntimeError: THREAD_BOMB_STOPPED: can't start new thread.*",
        ),
        weights=None,
        layers=("identity", "limits"),
    ),
    Case(
        "disk_fill",
        """
if PHASE == "train":
    import errno
    import itertools
    import time
    _chunk = b"\\0" * (1 << 20)

    def _fill(folder, budget_mb):
        written = 0
        for n in itertools.count():
            try:
                with open(_os.path.join(folder, f"fill-{n}"), "wb") as f:
                    while written < budget_mb:
                        f.write(_chunk)
                        written += 1
                    return written
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS):
                    return written  # full, or out of this job's reach
                if exc.errno != errno.EFBIG:  # one file over RLIMIT_FSIZE: start the next
                    raise

    _fill("/tmp", 1 << 20)  # the private /tmp, until it is full
    _fill(_os.path.expanduser("~"), 1 << 20)
    _fill(_os.getcwd(), 1 << 20)
    _fill(OUT_DIR, 256)  # the host disk: the output watchdog must stop this
    time.sleep(3)
    raise RuntimeError("DISK_FILL_NOT_STOPPED")
""",
        # A private /tmp is a capped tmpfs; a temp folder on the host's disk is watched.
        fails("invalid", rf"train wrote more than (?:{OUTPUT_MB} MB|256 MB to its temp folder)"),
        weights=None,
        layers=("limits",),
    ),
    Case(
        "disk_fill_dir_entries",
        """
if PHASE == "eval":
    import time
    for _j in range(2):
        open(f"{OUT_DIR}/e{_j}", "w").close()
    _long = "n" * 240
    for _i in range(70000):  # hard links to empty files: only directory blocks grow
        _os.link(f"{OUT_DIR}/e{_i % 2}", f"{OUT_DIR}/{_i:06d}{_long}")
    time.sleep(1.5)
""",
        fails("invalid", rf"eval wrote more than {OUTPUT_MB} MB"),
        layers=("limits",),
    ),
]

PROCESSES = [
    Case(
        "daemon_double_fork",
        """
if PHASE == "eval":
    import signal
    import time
    _pid = _os.fork()
    if _pid == 0:
        _os.setsid()
        if _os.fork() != 0:
            _os._exit(0)
        for _sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(_sig, signal.SIG_IGN)
        while True:
            time.sleep(3600)
    _os.waitpid(_pid, 0)
""",
        HONEST_LOADED,
        layers=(),
    ),
    Case(
        "kill_grader",
        """
if PHASE == "eval":
    import signal
    for _target in (_os.getppid(), -1, 1):
        try:
            _os.kill(_target, signal.SIGKILL)
        except OSError:
            pass
    for _pid in [int(p) for p in _os.listdir("/proc") if p.isdigit()]:
        if _pid != _os.getpid():
            try:
                _os.kill(_pid, signal.SIGKILL)
            except OSError:
                pass
""",
        HONEST_LOADED,
        layers=("namespaces|landlock",),
    ),
    Case(
        "exit_before_results",
        "\n_os._exit(0)\n",
        fails("crashed", "train exited with code 0 before reporting a result"),
        weights=None,
        layers=(),
    ),
    Case(
        "segfault",
        "\nimport ctypes\nctypes.string_at(0)\n",
        fails("crashed", "train was killed by SIGSEGV before reporting a result"),
        weights=None,
        layers=(),
    ),
    Case(
        "sigkill_self",
        "\nimport signal\n_os.kill(_os.getpid(), signal.SIGKILL)\n",
        fails("crashed", "train was killed by SIGKILL before reporting a result"),
        weights=None,
        layers=(),
    ),
]

FILES = [
    Case(
        "write_grader_venv",
        """
if PHASE == "eval":
    _pth = _os.path.join({{site_packages}}, "hostile-{{token_short}}.pth")
    try:
        with open(_pth, "a") as _f:
            _f.write("import os; os.system('echo {{pwned}}')\\n")
    except OSError:
        pass
    else:
        _os.unlink(_pth)
        leak("wrote " + _pth + ", which every later grader command would run")
""",
        HONEST_LOADED,
        layers=("namespaces|identity|landlock",),
    ),
    Case(
        "write_through_input",
        """
if PHASE == "train":
    _input = _os.path.join(IN_DIR, "train_inputs.npy")
    try:
        _os.chmod(_input, 0o666)
    except OSError:
        pass
    try:
        with open(_input, "r+b") as _f:
            _f.seek(200)
            _f.write(b"\\0" * 64)
    except OSError:
        pass
    else:
        leak("wrote into " + _input)
""",
        HONEST_RETRAINED,
        weights=None,
        layers=("namespaces|identity|landlock",),
    ),
    Case(
        "write_warm_process_memory",
        """
if PHASE == "eval":
    for _pid in [p for p in _os.listdir("/proc") if p.isdigit() and int(p) != _os.getpid()]:
        for _part in ("mem", "environ"):
            try:
                with open(f"/proc/{_pid}/{_part}", "r+b" if _part == "mem" else "rb") as _f:
                    _f.read(1)
            except OSError:
                continue
            leak(f"/proc/{_pid}/{_part} is open to this job")
""",
        HONEST_LOADED,
        layers=("namespaces|identity|landlock",),
    ),
    Case(
        "write_outside",
        """
if PHASE == "eval":
    for _path in ({{leaderboard}}, {{grades}}, {{other_source}}, {{other_notes}},
                  {{tmp_canary}}, {{out_canary}}, {{new_in_submissions}}, {{new_in_out}},
                  {{other_course}}):
        try:
            with open(_path, "a") as _f:
                _f.write({{pwned}})
        except OSError:
            continue
        leak("wrote " + _path)
""",
        HONEST_LOADED,
        layers=("namespaces|identity|landlock",),
    ),
    Case(
        "forged_stdout",
        """
import json
_forged = {"student": "forged_stdout", "status": "ok", "test_accuracy": 1.0,
           "train_accuracy": 1.0, "gap": 0.0, "message": "", "rank": 1}
print(json.dumps(_forged), flush=True)
print(json.dumps(_forged), file=_sys.stderr, flush=True)
print("test_accuracy=1.0 train_accuracy=1.0 status=ok", flush=True)
""",
        HONEST_LOADED,
        layers=(),
    ),
    Case(
        "forged_report",
        """
if PHASE == "train":
    import json
    with open(_os.path.join(OUT_DIR, "report.json"), "w") as _f:
        json.dump({"status": "ok", "message": "", "epochs": 1, "train_seconds": 0.0,
                   "test_accuracy": 1.0, "train_accuracy": 1.0}, _f)
    _os._exit(0)
""",
        fails("invalid", "model.safetensors was not written"),
        weights=None,
        layers=(),
    ),
    Case(
        "smuggle_train_to_eval",
        """
import socket
_SPOTS = ["/tmp/smuggled", _os.path.expanduser("~/.smuggled"),
          _os.path.join(_os.getcwd(), "smuggled-cwd"), "/dev/shm/smuggled",
          "/var/tmp/smuggled", "/run/lock/smuggled", "/job/smuggled",
          _os.path.join(IN_DIR, "smuggled"), _os.path.join(IN_DIR, "..", "smuggled")]
_ADDRESS = "\\0hostile-smuggle-{{token_short}}"
if PHASE == "train":
    for _path in _SPOTS:
        try:
            with open(_path, "w") as _f:
                _f.write("state from training")
        except OSError:
            pass
    try:
        _server = socket.socket(socket.AF_UNIX)
        _server.bind(_ADDRESS)
        _server.listen()
    except OSError:
        _server = None
    if _server is not None and _os.fork() == 0:
        _os.setsid()
        while True:
            _conn, _ = _server.accept()
            _conn.sendall(b"state from training")
            _conn.close()
    if _server is not None:
        _server.close()
elif PHASE == "eval":
    _found = [p for p in _SPOTS if _os.path.exists(p)]
    try:
        _client = socket.socket(socket.AF_UNIX)
        _client.connect(_ADDRESS)
        _found.append("a training daemon's socket: " + _client.recv(100).decode())
    except OSError:
        pass
    if _found:
        leak("SMUGGLED " + ", ".join(_found))
""",
        HONEST_RETRAINED,
        weights=None,
        layers=("namespaces|landlock",),
    ),
    Case(
        "monkeypatch_grader",
        """
import json
import numpy
import grader.child.training
import grader.jobs.grade
import grader.jobs.scoring
import grader.jobs.untrusted

_real_save = numpy.save


def _fake_read_scores(path, rows, classes):
    import numpy
    return numpy.zeros(rows, dtype=numpy.int64)


grader.jobs.untrusted.read_scores = _fake_read_scores
grader.jobs.grade.read_scores = _fake_read_scores
grader.jobs.scoring.accuracy = lambda predicted, labels: 1.0
torch.Tensor.argmax = lambda self, *args, **kwargs: torch.zeros(len(self), dtype=torch.long)
_real_dumps = json.dumps
json.dumps = lambda obj, *a, **k: _real_dumps(
    {**obj, "test_accuracy": 1.0} if isinstance(obj, dict) else obj, *a, **k)


def _save(file, arr, *args, **kwargs):
    _real_save(file, arr, *args, **kwargs)
    try:
        with open(_os.path.join(OUT_DIR, "accuracy.json"), "w") as f:
            f.write('{"test_accuracy": 1.0}')
    except OSError:
        pass


numpy.save = _save
""",
        HONEST_RETRAINED,
        weights=None,
        layers=(),
    ),
    Case(
        "fake_scores",
        """
import numpy


def _class_zero(path, arr, real):
    if path.endswith("scores.npy"):
        scores = numpy.zeros(arr.shape, dtype=numpy.float32)
        scores[:, 0] = 1.0
        real(path, scores, allow_pickle=False)
        print('{"status": "ok", "test_accuracy": 1.0}', flush=True)
        return True
    return False


on_save(_class_zero)
""",
        chance_accuracy,
        layers=(),
    ),
    Case(
        "terminal_escapes",
        "\nraise RuntimeError('\\x1b]0;owned\\x07\\x1b[2J\\x1b[1A all ok, test_accuracy 1.0')\n",
        no_control_characters,
        weights=None,
        layers=(),
    ),
]


LINKS_MSG = r"{} cannot be opened \(Too many levels of symbolic links\); links are not accepted"
OUTPUTS = [
    Case(
        "code_that_reads_as_markup",
        """
# </pre></details><script>alert("similarity page")</script><a href="https://evil.example">x</a>
_SHOWN = "\u202e\u200b</mark><img src=x onerror=alert(1)>"
""",
        HONEST_LOADED,
        layers=(),
    ),
    Case(
        "symlink_to_labels",
        """
def _link(path, arr, real):
    if path.endswith("scores.npy"):
        _os.symlink({{private_labels}}, path)
        return True
    return False


on_save(_link)
""",
        fails("invalid", LINKS_MSG.format(r"scores\.npy")),
        layers=(),
    ),
    Case(
        "symlink_to_shadow",
        """
def _link(path, arr, real):
    if path.endswith("scores.npy"):
        _os.symlink("/etc/shadow", path)
        return True
    return False


on_save(_link)
""",
        fails("invalid", LINKS_MSG.format(r"scores\.npy")),
        layers=(),
    ),
    Case(
        "nan_predictions",
        """
import numpy
on_save(lambda path, arr, real: path.endswith("scores.npy") and real(
    path, numpy.full(arr.shape, numpy.nan, dtype=numpy.float32), allow_pickle=False) is None)
""",
        fails("invalid", "the model produced NaN or infinite outputs"),
        layers=(),
    ),
    Case(
        "wrong_shape_predictions",
        """
on_save(lambda path, arr, real: path.endswith("scores.npy") and real(
    path, arr[:, :5], allow_pickle=False) is None)
""",
        fails("invalid", rf"predictions have shape \({N_BLIND}, 5\), expected \({N_BLIND}, 6\)"),
        layers=(),
    ),
    Case(
        "integer_predictions",
        """
import numpy
on_save(lambda path, arr, real: path.endswith("scores.npy") and real(
    path, numpy.zeros(arr.shape, dtype=numpy.int64), allow_pickle=False) is None)
""",
        fails("invalid", "predictions have dtype int64, expected floats"),
        layers=(),
    ),
    Case(
        "huge_predictions",
        """
import time


def _huge(path, arr, real):
    if not path.endswith("scores.npy"):
        return False
    chunk = b"\\0" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(200):  # 200 MB; RLIMIT_FSIZE stops it at its cap
            try:
                f.write(chunk)
            except OSError:
                break
    time.sleep(3)
    return True


on_save(_huge)
""",
        fails("invalid", rf"eval wrote more than {OUTPUT_MB} MB"),
        layers=("limits",),
    ),
    Case(
        "sparse_predictions",
        """
def _sparse(path, arr, real):
    if not path.endswith("scores.npy"):
        return False
    real(path, arr, allow_pickle=False)
    _os.truncate(path, 60 << 20)  # 60 MB on paper, a few blocks on disk
    return True


on_save(_sparse)
""",
        fails(
            "invalid",
            r"scores\.npy is [0-9.]+ (?:MB|KB|bytes), over the [0-9.]+ (?:MB|KB|bytes) limit",
        ),
        layers=(),
    ),
    Case(
        "pickled_predictions",
        """
import numpy


class _RunsOnLoad:
    def __reduce__(self):
        return (exec, ({{pickle_payload}},))


def _pickled(path, arr, real):
    if not path.endswith("scores.npy"):
        return False
    objects = numpy.empty(arr.shape, dtype=object)
    objects[0, 0] = _RunsOnLoad()
    real(path, objects, allow_pickle=True)
    return True


on_save(_pickled)
""",
        fails(
            "invalid",
            r"scores\.npy is not a valid \.npy array \(Object arrays cannot be loaded "
            r"when allow_pickle=False\)",
        ),
        layers=(),
    ),
    Case(
        "pickle_weights_pt",
        "",
        fails("invalid", r"eval: weights do not load into the model: Weights only load failed.*"),
        weights="pickle",
        layers=(),
    ),
    Case(
        "safetensors_header_bomb",
        "",
        fails("invalid", r"har\.safetensors is not a valid safetensors file \(.+\)"),
        weights="header_bomb",
        layers=(),
    ),
    Case(
        "deep_output_tree",
        """
if PHASE == "eval":
    _here = _os.open(_sys.argv[3], _os.O_RDONLY | _os.O_DIRECTORY)  # the job's out folder
    for _ in range(3000):  # deeper than a path may be long (PATH_MAX), or Python recurse
        _os.mkdir("d", dir_fd=_here)
        _down = _os.open("d", _os.O_RDONLY | _os.O_DIRECTORY, dir_fd=_here)
        _os.close(_here)
        _here = _down
    _os.close(_here)
""",
        fails("invalid", "eval nested folders more than 32 deep"),
        layers=("limits",),
    ),
    Case(
        "many_output_entries",
        """
if PHASE == "eval":
    for _i in range(20000):  # empty files and folders: each an entry, few or no blocks
        _path = _os.path.join(_sys.argv[3], f"e{_i}")
        if _i % 2:
            open(_path, "w").close()
        else:
            _os.mkdir(_path)
""",
        fails("invalid", rf"eval wrote more than {OUTPUT_MB} MB"),
        layers=("limits",),
    ),
]

CASES = LABELS + NETWORK + SECCOMP + RESOURCES + PROCESSES + FILES + OUTPUTS
CASES_BY_NAME = {case.name: case for case in CASES}

GOOD_WIDE = GOOD_HAR.replace("16", "24").replace('"epochs": 2', '"epochs": 3')
CONTROLS = {"control_good": (GOOD_HAR, None), "control_wide": (GOOD_WIDE, None)}
CONTROLS_LOADED = {"control_loaded": (GOOD_HAR, "good")}
# A folder name that is not UTF-8, as unzip makes from a Latin-1 zip, and the id it shows as.
NOT_UTF8_FOLDER, NOT_UTF8_ID = os.fsdecode(b"caf\xe9-latin1"), "caf\\xe9-latin1"


# -- the run --------------------------------------------------------------------------------


@dataclasses.dataclass
class HostileRun:
    board: pd.DataFrame
    base: Path
    submissions: Path
    out: Path
    data: PreparedData
    canaries: dict[Path, bytes]
    cases: list[str]  # the cases graded in this configuration
    submissions_before: dict[str, str]  # file -> sha256, before and after the run
    submissions_after: dict[str, str]
    cache_before: dict[str, str]  # the data cache every job's inputs are copied from
    cache_after: dict[str, str]
    accepted: list[Any]
    leftover_processes: list[str]
    leftover_workspaces: list[str]
    pickle_canary: Path
    private_modes: tuple[int, int]
    private_digest: str

    def row(self, student: str) -> pd.Series:
        rows = self.board[self.board.student == student]
        assert len(rows) == 1, f"{student}: {len(rows)} rows"
        return rows.iloc[0]


def good_weights() -> bytes:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(561, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6))
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


class _RunsOnLoad:
    """Unpickling this runs `code`: for pickles that only a careless loader would open."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code,))


def pickle_payload(canary: Path) -> str:
    return (
        f"try:\n    open({str(canary)!r}, 'w').write('pickle ran')\n"
        "finally:\n    raise RuntimeError('PICKLE_EXECUTED')\n"
    )


def weights_bytes(kind: str, canary: Path) -> tuple[str, bytes]:
    if kind == "good":
        return ".safetensors", good_weights()
    if kind == "pickle":
        buffer = io.BytesIO()
        torch.save({"0.weight": _RunsOnLoad(pickle_payload(canary))}, buffer)
        return ".pt", buffer.getvalue()
    assert kind == "header_bomb"
    return ".safetensors", struct.pack("<Q", 2**40) + b'{"a":' + b"x" * 1000


def fill(template: str, values: dict[str, object]) -> str:
    def value(match: re.Match[str]) -> str:
        return repr(values[match.group(1)])

    return re.sub(r"\{\{(\w+)\}\}", value, template)


def small_assignments(folder: Path) -> Path:
    text = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    for key, number in (
        ("max_epochs", 5),
        ("timeout_seconds", TIMEOUT_S),
        ("memory_mb", MEMORY_MB),
        ("max_weights_mb", 4),
        ("max_output_mb", OUTPUT_MB),
    ):
        text, count = re.subn(rf"(?m)^{key} = \d+", f"{key} = {number}", text)
        assert count == 1, key
    folder.mkdir()
    (folder / "har.toml").write_text(text)
    budgets = load_spec(folder / "har.toml").budgets
    assert (budgets.timeout_seconds, budgets.max_output_mb) == (TIMEOUT_S, OUTPUT_MB)
    return folder


def job_processes(token: str, grader_uid: int | None) -> list[str]:
    """Live processes of a job uid that run one of this suite's submissions, and any process
    of the grader's own uid (where it is not ours) left after the grader ended.

    Other grader runs may share the machine (and the uid range), so a process of a job uid
    counts as ours when its /job/in/submission.py, seen through its own root, holds this suite's
    token.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            uid = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("Uid:")))
        except (OSError, StopIteration, ValueError):
            continue
        if uid == grader_uid:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:100]
            found.append(f"pid {entry.name} uid {uid}: {cmdline.decode(errors='replace')}")
            continue
        if uid not in JOB_UIDS:
            continue
        try:
            source = (entry / "root" / "job" / "in" / "submission.py").read_text()
        except OSError:
            continue
        if token in source:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:100]
            found.append(f"pid {entry.name} uid {uid}: {cmdline.decode(errors='replace')}")
    return found


def job_workspaces(token: str) -> list[str]:
    """Grader workspaces (of this suite's submissions) still on the host disk."""
    left = []
    for workspace in Path(tempfile.gettempdir()).glob("grader-job-*"):
        for source in workspace.glob("*/in/submission.py"):
            try:
                if token in source.read_text():
                    left.append(str(workspace))
                    break
            except OSError:
                continue
    return left


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class LoopbackServer:
    """A TCP server on the grader host's 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(addr)
            conn.close()

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


UNPRIVILEGED_UID = 65534  # nobody
LAUNCHER = Path(__file__).parent / "support" / "unprivileged.py"


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One way the grader runs, and the layers it really has there."""

    name: str
    layers: frozenset[str]  # on
    # Off by the nature of the configuration, never by a fault: a case that needs one of these
    # (and no other layer that contains it) is skipped there, also in CI.
    lacks: frozenset[str]
    grade: Callable[[RunOptions, dict[str, str]], pd.DataFrame]
    uid: int | None = None  # the grader's own uid, where it is not this process's


def _in_process(name: str, sandbox: Sandbox) -> Configuration:
    def grade(options: RunOptions, env: dict[str, str]) -> pd.DataFrame:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)  # secrets in the grader's own environment
            return run(options, sandbox, log=lambda _message: None).board

    on = frozenset(layer.name for layer in sandbox.layers if layer.on)
    return Configuration(name, on, frozenset(), grade)


def _unprivileged() -> Configuration:
    """`grader run` as an ordinary user on a machine without user namespaces: no bubblewrap,
    no unshare, no uid per job, no cgroups; Landlock, seccomp and the limits remain."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    unreachable = [str(p) for p in _needed_paths() if not _reachable(p)]
    if unreachable:  # .ci/run makes them reachable: CI must run this configuration
        why = f"not reachable for other users: {', '.join(unreachable)}"
        if require_sandbox():
            pytest.fail(why)
        pytest.skip(why)

    def grade(options: RunOptions, env: dict[str, str]) -> pd.DataFrame:
        args = ["run", str(options.submissions), "--out", str(options.out), "--workers", "2"]
        args += ["--assignments", str(options.assignments), "--data-dir", str(options.data_dir)]
        args += ["--mode", str(options.mode)]
        done = subprocess.run(
            [sys.executable, str(LAUNCHER), str(UNPRIVILEGED_UID), "--",
             sys.executable, "-m", "grader.cli", *args],
            env={**os.environ, **env, "HOME": str(options.out), "GRADER_REQUIRE_SANDBOX": ""},
            cwd=options.out, capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        reported = re.findall(r"(?m)^sandbox (\w+): (on|OFF) ", done.stderr)
        assert {name for name, state in reported if state == "on"} == layers, done.stderr
        assert options.assignments is not None
        specs = load_specs(options.assignments)
        return build_board(Store(options.out / DB_NAME).latest(), specs).frame

    layers = frozenset({"limits", "landlock", "seccomp"})
    lacks = frozenset({"namespaces", "identity", "cgroups"})
    return Configuration("unprivileged", layers, lacks, grade, UNPRIVILEGED_UID)


def _needed_paths() -> list[Path]:
    import grader

    return [Path(os.path.realpath(sys.executable)), Path(grader.__file__), LAUNCHER]


def _reachable(path: Path) -> bool:
    return all(parent.stat().st_mode & 0o001 for parent in path.parents)


@pytest.fixture(scope="module", params=["warm", "cold", "cold-unshare", "unprivileged"])
def configuration(
    request: pytest.FixtureRequest, sandbox: Sandbox, cold_sandbox: Sandbox
) -> Iterator[Configuration]:
    """The suite runs once per configuration: jobs forked from warm processes; fresh processes
    (--no-warm: bubblewrap where it is installed, else the unshare fallback); the unshare
    fallback with bubblewrap hidden from PATH; an unprivileged user without user namespaces."""
    name = request.param
    if name == "warm":
        if not sandbox.warm:
            if require_sandbox():
                pytest.fail(f"the warm path should work here: {sandbox.launch}")
            pytest.skip(f"no warm path on this machine: {sandbox.launch}")
        yield _in_process(name, sandbox)
    elif name == "cold":
        yield _in_process(name, cold_sandbox)
    elif name == "cold-unshare":
        if os.geteuid() != 0:
            pytest.skip("the unshare fallback needs root")
        if cold_sandbox.mode != "bwrap":
            pytest.skip(f"the cold configuration is {cold_sandbox.mode} here already")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", _path_without_bwrap())
            with Sandbox(require=require_sandbox(), warm=False) as box:
                assert box.mode == "unshare", box.launch
                yield _in_process(name, box)
    else:
        yield _unprivileged()


def _path_without_bwrap() -> str:
    folder = Path(tempfile.mkdtemp(prefix="path-without-bwrap-"))
    for tool in ("unshare", "setpriv"):
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return str(folder)


def _course_base(tmp_path_factory: pytest.TempPathFactory, config: Configuration) -> Path:
    """Where the course lives: somewhere the grader's user can reach and own."""
    if config.uid is None:
        return tmp_path_factory.mktemp("hostile")
    base = Path(tempfile.mkdtemp(prefix="hostile-unprivileged-"))
    base.chmod(0o755)
    return base


def _hand_over(base: Path, uid: int | None) -> None:
    if uid is None:
        return
    for path in [base, *base.rglob("*")]:
        os.chown(path, uid, uid, follow_symlinks=False)


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory, configuration: Configuration
) -> Iterator[HostileRun]:
    """Grade every hostile case and the controls in one run; collect what the checks need."""
    from support.data import write_tiny_har

    base = _course_base(tmp_path_factory, configuration)
    data_dir, cache_dir, out = base / "data", base / "cache", base / "out"
    submissions = base / "submissions"
    write_tiny_har(data_dir, N_TRAIN, N_TEST)
    data = prepare("uci_har", data_dir, cache_dir, download=False)
    assignments = small_assignments(base / "assignments")
    out.mkdir()
    other_course = base / "other-course"
    other_course.mkdir()
    (other_course / DB_NAME).write_bytes(b"another course's store\n")
    canaries = {
        submissions / "control_good" / "NOTES.txt": b"control student's notes\n",
        base / "tmp-canary.txt": b"a file in the grader's tmp\n",
        out / "CANARY.txt": b"a file in the results folder\n",
        other_course / DB_NAME: b"another course's store\n",
    }
    pickle_canary = base / "pickle-ran.txt"
    with LoopbackServer() as server:
        values: dict[str, object] = {
            "token": TOKEN,
            "token_short": TOKEN[:12],
            "private_dir": str(data.private_dir),
            "private_labels": str(data.private_dir / "test_labels.npy"),
            "raw_labels": str(data_dir / "UCI_HAR" / "UCI HAR Dataset" / "test" / "y_test.txt"),
            "data_dir": str(data_dir),
            "cache_dir": str(cache_dir),
            "cached_inputs": str(data.public_dir / "train_inputs.npy"),
            "leaderboard": str(out / CSV_NAME),
            "grades": str(out / DB_NAME),
            "other_course": str(other_course / DB_NAME),
            "other_source": str(submissions / "control_good" / "har.py"),
            "other_notes": str(submissions / "control_good" / "NOTES.txt"),
            "tmp_canary": str(base / "tmp-canary.txt"),
            "out_canary": str(out / "CANARY.txt"),
            "new_in_submissions": str(submissions / PWNED),
            "new_in_out": str(out / PWNED),
            "site_packages": sysconfig.get_paths()["purelib"],
            "pwned": PWNED,
            "port": server.port,
            "memory_mb": MEMORY_MB,
            "pickle_payload": pickle_payload(pickle_canary),
        }
        # An attack the configuration cannot contain by its nature is not graded there: a fork
        # bomb with no uid or cgroup of its own would only load the machine.
        cases = [case for case in CASES if not lacks_by_nature(configuration, case.layers)]
        students = {case.name: (GOOD_HAR + PRELUDE + case.code, case.weights) for case in cases}
        students.update(CONTROLS)
        students.update(CONTROLS_LOADED)
        for student, (source, weights) in students.items():
            folder = submissions / student
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "har.py").write_text(fill(source, values))
            if weights is not None:
                suffix, payload = weights_bytes(weights, pickle_canary)
                (folder / f"har{suffix}").write_bytes(payload)
        (submissions / NOT_UTF8_FOLDER).mkdir()
        (submissions / NOT_UTF8_FOLDER / "har.py").write_text(GOOD_HAR)
        for path, content in canaries.items():
            path.write_bytes(content)
        before = snapshot(submissions)
        cached_before = snapshot(cache_dir)
        _hand_over(base, configuration.uid)
        options = RunOptions(
            submissions=submissions,
            out=out,
            assignments=assignments,
            data_dir=data_dir,
            cache_dir=cache_dir,
            mode=Mode.AUTO,
            workers=2,
        )
        secrets = {
            "GRADER_DATA_DIR": str(data_dir),
            "GRADER_CACHE_DIR": str(cache_dir),
            "HOSTILE_SUITE_SECRET": TOKEN,
        }
        board = configuration.grade(options, secrets)
        leftover_processes = job_processes(TOKEN, configuration.uid)
    private = data.private_dir / "test_labels.npy"
    yield HostileRun(
        board=board,
        base=base,
        cases=[case.name for case in cases],
        submissions=submissions,
        out=out,
        data=data,
        canaries=canaries,
        submissions_before=before,
        submissions_after=snapshot(submissions),
        cache_before=cached_before,
        cache_after=snapshot(cache_dir),
        accepted=server.accepted,
        leftover_processes=leftover_processes,
        leftover_workspaces=job_workspaces(TOKEN),
        pickle_canary=pickle_canary,
        private_modes=(data.private_dir.stat().st_mode & 0o777, private.stat().st_mode & 0o777),
        private_digest=hashlib.sha256(private.read_bytes()).hexdigest(),
    )
    if configuration.uid is not None:
        remove_tree(base)


def missing_layers(config: Configuration, needed: tuple[str, ...]) -> list[str]:
    """Each needed entry is a layer, or layers any one of which contains the attack ("a|b"):
    those of which the configuration has none."""
    return [need for need in needed if not set(need.split("|")) & config.layers]


def lacks_by_nature(config: Configuration, needed: tuple[str, ...]) -> bool:
    missing = missing_layers(config, needed)
    return bool(missing) and all(set(need.split("|")) <= config.lacks for need in missing)


def skip_if_layers_off(config: Configuration, needed: tuple[str, ...]) -> None:
    """A configuration excuses a case only for the layers it lacks by nature; elsewhere off
    layers excuse a case on a developer machine only, as CI requires every layer."""
    missing = missing_layers(config, needed)
    if missing and (lacks_by_nature(config, needed) or not require_sandbox()):
        pytest.skip(f"{config.name}: isolation layer(s) off: {', '.join(missing)}")


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.leaks)] if case.leaks else []
        params.append(pytest.param(case.name, marks=marks, id=case.name))
    return params


@pytest.mark.parametrize("name", _params())
def test_hostile_case(hostile: HostileRun, configuration: Configuration, name: str) -> None:
    case = CASES_BY_NAME[name]
    skip_if_layers_off(configuration, case.layers)
    case.check(hostile.row(name), hostile)


# -- what must hold after the whole run ---------------------------------------------------------


def test_every_submission_has_exactly_one_row(hostile: HostileRun) -> None:
    expected = set(hostile.cases) | set(CONTROLS) | set(CONTROLS_LOADED) | {NOT_UTF8_ID}
    assert sorted(hostile.board.student) == sorted(expected)
    store = Store(hostile.out / DB_NAME)
    assert store.attempts() == len(expected)


def test_a_folder_name_that_is_not_utf8_is_a_row_of_its_own(hostile: HostileRun) -> None:
    row = hostile.row(NOT_UTF8_ID)
    assert (row.status, row.message) == (
        "invalid",
        f"folder name '{NOT_UTF8_ID}' is not UTF-8; rename the folder to the student's id",
    )


def test_controls_are_graded_as_if_alone(hostile: HostileRun, grade_source: GradeSource) -> None:
    """One hostile submission never changes another's row."""
    keys = ["status", "test_accuracy", "train_accuracy", "weights_sha256", "params"]
    alone = {
        "control_good": grade_source(GOOD_HAR, student="alone_good"),
        "control_wide": grade_source(GOOD_WIDE, student="alone_wide"),
        "control_loaded": grade_source(
            GOOD_HAR, student="alone_loaded", mode="auto", weights=good_weights()
        ),
    }
    for student, result in alone.items():
        row = hostile.row(student)
        assert result.status == "ok", result.message
        expected = [
            result.status,
            round(result.test_accuracy or 0, 6),
            round(result.train_accuracy or 0, 6),
            result.weights_sha256,
            result.params,
        ]
        assert row[keys].tolist() == expected, student


def test_no_job_process_outlives_the_run(hostile: HostileRun, configuration: Configuration) -> None:
    assert hostile.leftover_processes == []
    assert job_processes(TOKEN, configuration.uid) == []


def test_job_workspaces_are_removed(hostile: HostileRun) -> None:
    assert hostile.leftover_workspaces == []


def test_files_outside_the_jobs_are_unchanged(hostile: HostileRun) -> None:
    for path, content in hostile.canaries.items():
        assert path.read_bytes() == content, path
    assert hostile.submissions_after == hostile.submissions_before
    pwned = [str(p) for p in hostile.base.rglob(f"*{PWNED}*")]
    assert pwned == []
    assert not hostile.pickle_canary.exists()


def test_the_data_cache_is_unchanged(hostile: HostileRun) -> None:
    """Jobs read copies of the cached inputs: none can write into the cache through them."""
    assert hostile.cache_after == hostile.cache_before


def test_leaderboard_is_what_the_store_says(hostile: HostileRun, tmp_path: Path) -> None:
    store = Store(hostile.out / DB_NAME)
    expected = tmp_path / "expected.csv"
    write_csv(ranked(store.latest(), similar=similar_to(store.similar_pairs())), expected)
    assert (hostile.out / CSV_NAME).read_bytes() == expected.read_bytes()


def test_the_similarity_page_keeps_every_submissions_code_inert(hostile: HostileRun) -> None:
    """Every case is one small model with an attack added, so every pair is alike: each file's
    code is on the instructor's similarity page, where none of it may run, hide or link out."""
    page = (hostile.out / "similarity.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page
    assert hidden(page) == []
    assert all(link.startswith("#") for link in re.findall(r'<a href="([^"]*)"', page))
    with (hostile.out / "similarity.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    students = len(hostile.board[hostile.board.kind == "student"])
    assert len(rows) <= students * (students - 1) // 2
    assert all(not row["student_a"].startswith(("=", "+", "-", "@")) for row in rows)


def test_labels_stayed_private(hostile: HostileRun) -> None:
    assert hostile.private_modes == (0o700, 0o600)
    private = hostile.data.private_dir / "test_labels.npy"
    assert hashlib.sha256(private.read_bytes()).hexdigest() == hostile.private_digest
    assert not (hostile.board.test_accuracy >= 0.9).any()
    assert not hostile.board.message.str.contains("LEAK.*(?:read|label)", regex=True).any()


def test_loopback_server_never_accepted(hostile: HostileRun) -> None:
    assert hostile.accepted == []


# -- cases that need options of their own -------------------------------------------------------


def test_infinite_loop_is_stopped_by_the_timeout(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR + "\nwhile True:\n    pass\n", timeout_seconds=8)
    assert (result.status, result.stage) == ("timeout", "importing the submission")


def test_sleeping_forever_with_signals_ignored_is_stopped(grade_source: GradeSource) -> None:
    source = GOOD_HAR + textwrap.dedent(
        f"""
        # hostile-suite token: {TOKEN}
        import os, signal, time
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        if os.fork() == 0:
            os.setsid()
            while True:
                time.sleep(3600)
        while True:
            time.sleep(3600)
        """
    )
    result = grade_source(source, timeout_seconds=8)
    assert (result.status, result.stage) == ("timeout", "importing the submission")
    assert job_processes(TOKEN, None) == []


def test_reseeding_from_the_clock_is_flagged(grade_source: GradeSource) -> None:
    source = GOOD_HAR + textwrap.dedent(
        """
        import time

        def train(model, train_set, hparams):
            torch.manual_seed(time.time_ns() % 2**63)
            inputs, labels = train_set.tensors
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.01)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(hparams["epochs"]):
                loss = torch.nn.functional.cross_entropy(model(inputs), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        """
    )
    result = grade_source(source, verify_determinism=True)
    assert (result.status, result.message) == (
        "nondeterministic",
        "training twice with the grader's seed gave different weights; do not re-seed from "
        "the clock or use nondeterministic operations",
    )


def test_the_graders_working_directory_is_not_visible(
    grade_source: GradeSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    """`python -m grader.cli` puts its working directory (the course folder) on sys.path;
    the job's view must hold the interpreter and packages only, not every sys.path entry."""
    skip_if_layers_off(_in_process("this machine", sandbox), ("namespaces",))
    course = tmp_path / "course-root"
    secret = course / "results" / "leaderboard.csv"
    secret.parent.mkdir(parents=True)
    secret.write_text("rank,student\n1,alice\n")
    (course / "submissions" / "alice").mkdir(parents=True)
    (course / "submissions" / "alice" / "har.py").write_text("# alice's work\n")
    monkeypatch.syspath_prepend(str(course))  # what `python -m grader.cli` run there does
    source = GOOD_HAR + textwrap.dedent(
        f"""
        for path in ({str(secret)!r}, {str(course / "submissions" / "alice" / "har.py")!r}):
            try:
                with open(path) as f:
                    raise RuntimeError("LEAK could read " + path + ": " + f.read(30))
            except OSError:
                pass
        raise RuntimeError("NOT_READABLE")
        """
    )
    result = grade_source(source)
    assert result.status == "error"
    assert "NOT_READABLE" in result.message, result.message


CPU_HOG = """
import os, time
for _ in range(16):
    if os.fork() == 0:
        os.setsid()  # a scheduling group of its own for every spinner
        while True:
            pass
time.sleep(3600)
"""


def test_a_cpu_hog_does_not_starve_a_concurrent_job(
    grade_source: GradeSource, sandbox: Sandbox
) -> None:
    # Only a cgroup's CPU quota holds back a job's many processes; rlimits cannot.
    skip_if_layers_off(_in_process("this machine", sandbox), ("cgroups",))
    results: dict[str, Any] = {}

    def grade(student: str, source: str, timeout: int) -> None:
        results[student] = grade_source(source, student=student, timeout_seconds=timeout)

    hog = threading.Thread(target=grade, args=("hog", GOOD_HAR + f"# {TOKEN}\n" + CPU_HOG, 25))
    hog.start()
    time.sleep(1)
    grade("bystander", GOOD_HAR, 15)
    hog.join()
    assert job_processes(TOKEN, None) == []
    assert results["hog"].status == "timeout"
    assert results["bystander"].status == "ok", results["bystander"].message
