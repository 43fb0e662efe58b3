"""Per-job control groups: one memory budget for all of a job's processes (shared memory and
its private /tmp included), a CPU quota so one job cannot starve another, and a process cap.

rlimits count per process and miss shared memory; a cgroup counts the whole job. Both cgroup
v2 (one unified tree) and v1 (one tree per controller) are supported, since both are in use.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class JobCgroup:
    version: int
    folders: tuple[Path, ...]

    @property
    def procs_files(self) -> list[Path]:
        return [folder / "cgroup.procs" for folder in self.folders]

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the job for going over its memory budget."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for folder in self.folders:
            with contextlib.suppress(OSError):
                for line in (folder / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        return False

    def kill_all_and_remove(self) -> None:
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for folder in self.folders:
            with contextlib.suppress(OSError):
                folder.rmdir()

    def pids(self) -> set[int]:
        pids: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
        return pids


class Cgroups:
    """Where this process may create job cgroups; `detect` returns None where it may not."""

    def __init__(self, version: int, parents: dict[str, Path]) -> None:
        self.version = version
        self._parents = parents

    @classmethod
    def detect(cls) -> Cgroups | None:
        if os.geteuid() != 0:
            return None
        own = _own_cgroups()
        if (ROOT / "cgroup.controllers").exists():
            return cls._detect_v2()
        parents = {c: ROOT / c / own.get(c, "/").lstrip("/") / "course-grader" for c in CONTROLLERS}
        try:
            for parent in parents.values():
                parent.mkdir(exist_ok=True)
        except OSError:
            return None
        return cls(1, parents)

    @classmethod
    def _detect_v2(cls) -> Cgroups | None:
        # Jobs live under a folder of their own at the top: a cgroup holding processes (ours)
        # may not also hand controllers down to children.
        parent = ROOT / "course-grader"
        try:
            available = (ROOT / "cgroup.controllers").read_text().split()
            if not set(CONTROLLERS) <= set(available):
                return None
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))
        except OSError:
            return None
        return cls(2, {"unified": parent})

    def create(self, name: str, memory_bytes: int, max_processes: int, cpus: int) -> JobCgroup:
        """A fresh cgroup for one job; raises OSError if the kernel refuses."""
        folders = {key: parent / name for key, parent in self._parents.items()}
        for folder in folders.values():
            if folder.exists():
                JobCgroup(self.version, (folder,)).kill_all_and_remove()
            folder.mkdir()
        quota = str(cpus * CPU_PERIOD_US)
        if self.version == 2:
            folder = folders["unified"]
            _write(folder / "memory.max", str(memory_bytes))
            _write(folder / "memory.swap.max", "0", optional=True)
            _write(folder / "pids.max", str(max_processes))
            _write(folder / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        else:
            _write(folders["memory"] / "memory.limit_in_bytes", str(memory_bytes))
            _write(
                folders["memory"] / "memory.memsw.limit_in_bytes", str(memory_bytes), optional=True
            )
            _write(folders["pids"] / "pids.max", str(max_processes))
            _write(folders["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(folders["cpu"] / "cpu.cfs_quota_us", quota)
        return JobCgroup(self.version, tuple(folders.values()))


def _write(path: Path, value: str, *, optional: bool = False) -> None:
    try:
        path.write_text(value)
    except OSError:
        if not optional:
            raise


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, from /proc/self/cgroup."""
    paths = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                paths[controller] = path
    return paths
