"""What this machine offers for isolation, looked up once: tools, privileges, cgroups, seccomp.

Finding a tool is not proof that a job gets its layer; the Sandbox proves each layer with a real
probe job before it promises it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import shutil
from dataclasses import dataclass, replace

from grader.protocol import NAMESPACES
from grader.sandbox.cgroups import Cgroups
from grader.sandbox.leases import JOB_UIDS

LAYERS = ("namespaces", "identity", "limits", "cgroups", "seccomp", "landlock")
LANDLOCK_CREATE_RULESET, LANDLOCK_CREATE_RULESET_VERSION = 444, 1


@dataclass(frozen=True)
class Layer:
    name: str
    on: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {'on' if self.on else 'OFF'} ({self.detail})"


@dataclass(frozen=True)
class Setup:
    """The layers one sandbox promises its jobs, and how jobs start."""

    mode: str  # how namespaces are made: "bwrap", "unshare", "forked" or "none"
    identity: bool
    cgroups: Cgroups | None
    seccomp_library: str | None
    warm: bool = False  # forked from a warm process, not started afresh
    landlock_abi: int = 0  # the kernel's Landlock ABI the jobs confine themselves with; 0: off

    def layers_on(self) -> set[str]:
        on = {"limits"}
        on |= {"namespaces"} if self.mode != "none" else set()
        on |= {"identity"} if self.identity else set()
        on |= {"cgroups"} if self.cgroups else set()
        on |= {"seccomp"} if self.seccomp_library else set()
        on |= {"landlock"} if self.landlock_abi else set()
        return on

    def without(self, layer: str) -> Setup:
        if layer == "identity":
            return replace(self, identity=False)
        if layer == "cgroups":
            return replace(self, cgroups=None)
        if layer == "seccomp":
            return replace(self, seccomp_library=None)
        if layer == "landlock":
            return replace(self, landlock_abi=0)
        raise ValueError(f"layer {layer} cannot be left out")


@dataclass(frozen=True)
class Machine:
    enabled: bool
    root: bool
    bwrap: str | None
    unshare: str | None
    setpriv: str | None
    cgroups: Cgroups | None
    seccomp_library: str | None
    landlock_abi: int = 0

    @classmethod
    def detect(cls, enabled: bool) -> Machine:
        root = os.geteuid() == 0
        return cls(
            enabled=enabled,
            root=root,
            bwrap=_tool("bwrap") if enabled else None,
            unshare=_tool("unshare") if enabled and root else None,
            setpriv=_tool("setpriv") if enabled and root else None,
            cgroups=usable_cgroups() if enabled else None,
            seccomp_library=seccomp_library(),
            landlock_abi=landlock_abi(),
        )

    def warm_setups(self) -> list[Setup]:
        """Forked from a warm process: as root, each job makes its own namespaces."""
        mode = "forked" if self.root and self.enabled else "none"
        return [Setup(mode, mode == "forked", self.cgroups, self.seccomp_library, warm=True,
                      landlock_abi=self.landlock_abi)]  # fmt: skip

    def cold_setups(self) -> list[Setup]:
        """A fresh process per job, strongest first: bubblewrap, unshare (root), nothing."""
        modes = ["bwrap"] if self.bwrap else []
        if self.unshare and self.setpriv:
            modes.append("unshare")
        modes.append("none")
        return [
            Setup(mode, self._identity(mode), self.cgroups, self.seccomp_library,
                  landlock_abi=self.landlock_abi)
            for mode in modes
        ]  # fmt: skip

    def _identity(self, mode: str) -> bool:
        # Both views make the interpreter reachable for a job uid, wherever it is installed.
        return self.root and self.setpriv is not None and mode != "none"

    def describe(self, setup: Setup, notes: dict[str, str]) -> list[Layer]:
        """The layers as reported to the user: on, or off with the reason."""
        modes = {
            "forked": "made by each forked job for itself: no network, own pid/ipc/uts/mount, "
            "read-only job view, private /tmp",
            "bwrap": "bubblewrap: no network, own pid/ipc/uts, read-only job view, private /tmp",
            "unshare": "unshare fallback: no network, own pid/ipc/uts/mount, the same read-only "
            "job view as bubblewrap, private /tmp and /dev/shm",
            "none": notes.get("namespaces", self._no_namespaces()),
        }
        return [
            Layer("namespaces", setup.mode != "none", modes[setup.mode]),
            Layer(
                "identity",
                setup.identity,
                f"a free uid from {JOB_UIDS.start}-{JOB_UIDS.stop - 1} per job, no capabilities"
                if setup.identity
                else notes.get("identity", self._no_identity(setup.mode)),
            ),
            Layer(
                "limits",
                True,
                "rlimits (memory, cpu, files, open files"
                + (", processes" if setup.identity else "")
                + "), timeout, output watchdog",
            ),
            Layer(
                "cgroups",
                setup.cgroups is not None,
                f"cgroup v{setup.cgroups.version} per job: memory of all its processes, "
                "CPU quota, process count"
                if setup.cgroups
                else notes.get(
                    "cgroups",
                    "not root or no writable memory/pids/cpu controllers: "
                    "memory is limited per process only and jobs share the CPU",
                ),
            ),
            Layer(
                "seccomp",
                setup.seccomp_library is not None,
                f"filter on sockets, ptrace, mount, namespaces, bpf ({setup.seccomp_library})"
                if setup.seccomp_library
                else notes.get("seccomp", "libseccomp or pyseccomp not available"),
            ),
            Layer(
                "landlock",
                setup.landlock_abi > 0,
                _landlock_detail(setup.landlock_abi)
                if setup.landlock_abi
                else notes.get("landlock", "this kernel offers no Landlock (Linux 5.13+)"),
            ),
        ]

    def _no_namespaces(self) -> str:
        if not self.enabled:
            return "disabled by --no-sandbox"
        return (
            "no bubblewrap here, and unshare needs root"
            if not self.root
            else "no bubblewrap or unshare here"
        )

    def _no_identity(self, mode: str) -> str:
        if not self.enabled:
            return "disabled by --no-sandbox: children run as the grader's user"
        if not self.root:
            return "not root: children run as the grader's user"
        if self.setpriv is None:
            return "setpriv (util-linux) not found: children run as root"
        return "no namespaces to give the job a view of the interpreter: children run as root"


def seccomp_library() -> str | None:
    """libseccomp's file, found with the grader's full view of the system, where the loader
    cache is readable. Jobs load exactly this file, whatever their own view lets them search."""
    if importlib.util.find_spec("pyseccomp") is None:
        return None
    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None
    try:
        ctypes.CDLL(name)
    except OSError:
        return None
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip()
            if os.path.basename(path).startswith("libseccomp.so"):
                return os.path.realpath(path)
    return None


def _landlock_detail(abi: int) -> str:
    detail = (
        f"ABI {abi}, applied by each job to itself: reads only the interpreter, its packages "
        "and the job's inputs, writes only the job's output and temp folders"
    )
    if abi >= 4:
        detail += ", no TCP bind or connect"
    if abi >= 6:
        detail += ", no abstract unix sockets or signals outside the job"
    return detail


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where it has none or it is disabled."""
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(
        LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION
    )
    return max(int(version), 0)


def own_namespaces() -> dict[str, str]:
    return {name: os.readlink(f"/proc/self/ns/{name}") for name in NAMESPACES}


def usable_cgroups() -> Cgroups | None:
    """Cgroups where a job cgroup can really be made (a probe is created and removed)."""
    cgroups = Cgroups.detect()
    if cgroups is None:
        return None
    try:
        cgroups.create(f"probe-{os.getpid()}", 64 << 20, 8, 1).kill_all_and_remove()
    except OSError:
        return None
    return cgroups


def _tool(name: str) -> str | None:
    """A program's real path: a link on PATH may live in a folder a job's view hides."""
    found = shutil.which(name)
    return os.path.realpath(found) if found else None
