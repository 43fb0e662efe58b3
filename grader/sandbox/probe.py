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
from enum import StrEnum

from grader.protocol import NAMESPACES
from grader.sandbox.cgroups import Cgroups
from grader.sandbox.leases import JOB_UIDS


class LayerName(StrEnum):
    """The isolation layers, in the order they are reported."""

    NAMESPACES = "namespaces"
    IDENTITY = "identity"
    LIMITS = "limits"
    CGROUPS = "cgroups"
    SECCOMP = "seccomp"
    LANDLOCK = "landlock"


class Namespacing(StrEnum):
    """How a job's namespaces are made."""

    BWRAP = "bwrap"  # bubblewrap starts the job in its view
    UNSHARE = "unshare"  # the unshare fallback builds the same view (root)
    FORKED = "forked"  # a warm process's child makes its own (root)
    NONE = "none"


LAYERS = tuple(LayerName)
# What a breach names where no layer is to blame: the job never said what it runs under
# (START), or its child could not follow its config (CHILD). Every other breach names a layer.
START, CHILD = "start", "child"
LANDLOCK_CREATE_RULESET, LANDLOCK_CREATE_RULESET_VERSION = 444, 1


@dataclass(frozen=True)
class Layer:
    name: LayerName
    on: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {'on' if self.on else 'OFF'} ({self.detail})"


@dataclass(frozen=True)
class Setup:
    """The layers one sandbox promises its jobs, and how jobs start."""

    mode: Namespacing
    identity: bool
    cgroups: Cgroups | None
    seccomp_library: str | None
    warm: bool = False  # forked from a warm process, not started afresh
    landlock_abi: int = 0  # the kernel's Landlock ABI the jobs confine themselves with; 0: off

    def layers_on(self) -> set[str]:
        wanted = {
            LayerName.LIMITS: True,
            LayerName.NAMESPACES: self.mode is not Namespacing.NONE,
            LayerName.IDENTITY: self.identity,
            LayerName.CGROUPS: self.cgroups is not None,
            LayerName.SECCOMP: self.seccomp_library is not None,
            LayerName.LANDLOCK: self.landlock_abi > 0,
        }
        return {layer for layer, on in wanted.items() if on}

    def without(self, layer: str) -> Setup:
        if layer == LayerName.IDENTITY:
            return replace(self, identity=False)
        if layer == LayerName.CGROUPS:
            return replace(self, cgroups=None)
        if layer == LayerName.SECCOMP:
            return replace(self, seccomp_library=None)
        if layer == LayerName.LANDLOCK:
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
        mode = Namespacing.FORKED if self.root and self.enabled else Namespacing.NONE
        forked = mode is Namespacing.FORKED
        return [Setup(mode, forked, self.cgroups, self.seccomp_library, warm=True,
                      landlock_abi=self.landlock_abi)]  # fmt: skip

    def cold_setups(self) -> list[Setup]:
        """A fresh process per job, strongest first: bubblewrap, unshare (root), nothing."""
        modes = [Namespacing.BWRAP] if self.bwrap else []
        if self.unshare and self.setpriv:
            modes.append(Namespacing.UNSHARE)
        modes.append(Namespacing.NONE)
        return [
            Setup(mode, self._identity(mode), self.cgroups, self.seccomp_library,
                  landlock_abi=self.landlock_abi)
            for mode in modes
        ]  # fmt: skip

    def _identity(self, mode: Namespacing) -> bool:
        # Both views make the interpreter reachable for a job uid, wherever it is installed.
        return self.root and self.setpriv is not None and mode is not Namespacing.NONE

    def describe(self, setup: Setup, notes: dict[str, str]) -> list[Layer]:
        """The layers as reported to the user: on, or off with the reason."""
        modes = {
            Namespacing.FORKED: "made by each forked job for itself: no network, "
            "own pid/ipc/uts/mount, read-only job view, private /tmp",
            Namespacing.BWRAP: "bubblewrap: no network, own pid/ipc/uts, read-only job view, "
            "private /tmp",
            Namespacing.UNSHARE: "unshare fallback: no network, own pid/ipc/uts/mount, the same "
            "read-only job view as bubblewrap, private /tmp and /dev/shm",
            Namespacing.NONE: notes.get(LayerName.NAMESPACES, self._no_namespaces()),
        }
        return [
            Layer(LayerName.NAMESPACES, setup.mode is not Namespacing.NONE, modes[setup.mode]),
            Layer(
                LayerName.IDENTITY,
                setup.identity,
                f"a free uid from {JOB_UIDS.start}-{JOB_UIDS.stop - 1} per job, no capabilities"
                if setup.identity
                else notes.get(LayerName.IDENTITY, self._no_identity(setup.mode)),
            ),
            Layer(
                LayerName.LIMITS,
                True,
                "rlimits (memory, cpu, files, open files"
                + (", processes" if setup.identity else "")
                + "), timeout, output watchdog",
            ),
            Layer(
                LayerName.CGROUPS,
                setup.cgroups is not None,
                f"cgroup v{setup.cgroups.version} per job: memory of all its processes, "
                "CPU quota, process count"
                if setup.cgroups
                else notes.get(
                    LayerName.CGROUPS,
                    "not root or no writable memory/pids/cpu controllers: "
                    "memory is limited per process only and jobs share the CPU",
                ),
            ),
            Layer(
                LayerName.SECCOMP,
                setup.seccomp_library is not None,
                f"filter on sockets, ptrace, mount, namespaces, bpf ({setup.seccomp_library})"
                if setup.seccomp_library
                else notes.get(LayerName.SECCOMP, "libseccomp or pyseccomp not available"),
            ),
            Layer(
                LayerName.LANDLOCK,
                setup.landlock_abi > 0,
                _landlock_detail(setup.landlock_abi)
                if setup.landlock_abi
                else notes.get(LayerName.LANDLOCK, "this kernel offers no Landlock (Linux 5.13+)"),
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

    def _no_identity(self, mode: Namespacing) -> str:
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
