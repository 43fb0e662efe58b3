"""The sandbox: the only module that starts processes.

Student code runs in a child process wrapped in layers, each detected at start-up and reported
as on or off, because a layer that silently fails to apply is worse than one known to be missing:

- identity:   the child runs as an unprivileged uid of its own, claimed per job;
- namespaces: bubblewrap gives it no network, its own pid space, and a read-only view of only
              the job's files plus a size-capped private /tmp (`unshare` is the weaker fallback);
- limits:     rlimits on memory, CPU time, processes, file size and open files, a wall-clock
              timeout, an output-size watchdog, and a sweep that kills whatever the job left;
- seccomp:    a filter that denies non-unix sockets, ptrace, mounts, new namespaces and the like.

The child applies its own rlimits and seccomp filter (`grader.confine`) before it imports
any student code.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import shutil
import signal
import site
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grader
from grader.cgroups import Cgroups, JobCgroup
from grader.confine import seccomp_available
from grader.text import printable

JOB_UIDS = range(61000, 62000)
UID_LOCK_DIR = Path("/run/course-grader")
LOG_TAIL_BYTES = 4000
ENTRY_CHARGE = 4096  # bytes charged per file, folder or link in a job's output
SYSTEM_PATHS = (
    "/usr",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/alternatives",
)
VIEW_IN, VIEW_OUT = "/job/in", "/job/out"


class SandboxError(Exception):
    """The sandbox cannot give the isolation that was asked for."""


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float
    memory_bytes: int
    max_processes: int
    max_file_bytes: int
    max_open_files: int
    max_output_bytes: int
    threads: int = 1
    tmp_bytes: int = 256 << 20


PROBE_LIMITS = Limits(
    timeout_seconds=60,
    memory_bytes=1 << 30,
    max_processes=64,
    max_file_bytes=1 << 20,
    max_open_files=64,
    max_output_bytes=1 << 20,
)


@dataclass(frozen=True)
class Layer:
    name: str
    on: bool
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {'on' if self.on else 'OFF'} ({self.detail})"


@dataclass(frozen=True)
class JobOutcome:
    returncode: int
    timed_out: bool
    output_exceeded: bool
    seconds: float
    log_tail: str
    out_of_memory: bool = False

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the job; bwrap and sh report one as exit code 128 + N."""
        if self.returncode < 0:
            number = -self.returncode
        elif 128 < self.returncode <= 128 + 64:
            number = self.returncode - 128
        else:
            return None
        try:
            return signal.Signals(number).name
        except ValueError:
            return f"signal {number}"


class Sandbox:
    """Runs `python -m grader.child` jobs with every isolation layer this machine offers."""

    def __init__(self, *, enabled: bool = True, require: bool = False) -> None:
        self._root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
        self._bwrap = shutil.which("bwrap") if enabled else None
        self._unshare = shutil.which("unshare") if enabled and self._root else None
        self._setpriv = shutil.which("setpriv") if enabled and self._root else None
        self._active: dict[int, int | None] = {}  # process group -> job uid, for kill_all
        self._lock = threading.Lock()
        self._job_numbers = itertools.count()
        self._cgroups = _usable_cgroups() if enabled else None
        self._mode = self._detect_mode()
        self._identity = (
            self._root
            and self._setpriv is not None
            and (self._mode == "bwrap" or _reachable_by_others(Path(sys.executable)))
        )
        self.layers = self._detect_layers()
        weak = [layer.name for layer in self.layers if not layer.on]
        if require and weak:
            raise SandboxError("--require-sandbox: isolation layers off: " + ", ".join(weak))

    @property
    def mode(self) -> str:
        """How namespaces are made: "bwrap", "unshare" or "none"."""
        return self._mode

    @property
    def identity(self) -> bool:
        """Whether jobs run as a uid of their own (decided once, at start-up)."""
        return self._identity

    def weak_warning(self) -> str | None:
        off = [layer for layer in self.layers if not layer.on]
        if not off:
            return None
        return "isolation is weak on this machine, student code is less contained: " + "; ".join(
            str(layer) for layer in off
        )

    def run(
        self, phase: str, in_dir: Path, out_dir: Path, log_path: Path, limits: Limits
    ) -> JobOutcome:
        """Run one phase of one job to completion; never raises for anything the child does."""
        with self._job_uid() as uid, self._job_cgroup(limits) as cgroup:
            if uid is not None:
                os.chown(out_dir, uid, uid)
            argv = self._command(phase, in_dir, out_dir, limits, uid)
            if cgroup is not None:
                argv = [*_enter_cgroup(cgroup), *argv]
            started = time.monotonic()
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_clean_env(limits),
                    cwd="/",
                    start_new_session=True,
                )
                with self._lock:
                    self._active[process.pid] = uid
                try:
                    timed_out, exceeded = _supervise(process, out_dir, limits)
                finally:
                    self._sweep(process.pid, uid)
                    with self._lock:
                        self._active.pop(process.pid, None)
            seconds = time.monotonic() - started
            out_of_memory = cgroup is not None and cgroup.oom_killed()
        return JobOutcome(
            process.returncode, timed_out, exceeded, seconds, _tail(log_path), out_of_memory
        )

    @contextmanager
    def _job_cgroup(self, limits: Limits) -> Iterator[JobCgroup | None]:
        if self._cgroups is None:
            yield None
            return
        name = f"job-{os.getpid()}-{next(self._job_numbers)}"
        cgroup = self._cgroups.create(
            name, limits.memory_bytes, limits.max_processes, limits.threads
        )
        try:
            yield cgroup
        finally:
            cgroup.kill_all_and_remove()

    @contextmanager
    def _job_uid(self) -> Iterator[int | None]:
        """A uid no other job (of this or another grader process) is using, held by a lock."""
        if not self.identity:
            yield None
            return
        UID_LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in JOB_UIDS:
            fd = os.open(UID_LOCK_DIR / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                _kill_uid(uid)  # leftovers of a grader that was killed mid-job
                yield uid
            finally:
                os.close(fd)
            return
        raise SandboxError(f"all {len(JOB_UIDS)} job uids are in use")

    def kill_all(self) -> None:
        """Stop every running job at once (the grader was interrupted)."""
        with self._lock:
            running = dict(self._active)
        for pid, uid in running.items():
            self._sweep(pid, uid)

    # -- building the command ------------------------------------------------------------

    def _detect_mode(self) -> str:
        if self._bwrap and self._works(self._bwrap_prefix(PROBE_LIMITS)):
            return "bwrap"
        if self._unshare and self._setpriv:
            return "unshare"
        return "none"

    def _detect_layers(self) -> list[Layer]:
        mode = self._mode
        return [
            Layer(
                "namespaces",
                mode != "none",
                {
                    "bwrap": "bubblewrap: no network, own pid/ipc/uts, read-only job view, "
                    "private /tmp",
                    "unshare": "unshare fallback: no network, own pid/ipc/uts/mount, private /tmp; "
                    "the whole filesystem stays visible",
                    "none": "no bubblewrap or unshare usable here",
                }[mode],
            ),
            Layer(
                "identity",
                self.identity,
                f"a free uid from {JOB_UIDS.start}-{JOB_UIDS.stop - 1} per job, no capabilities"
                if self.identity
                else "not root, or the interpreter is unreachable for other users: "
                "children run as the grader's user",
            ),
            Layer(
                "limits",
                True,
                "rlimits (memory, cpu, files, open files"
                + (", processes" if self.identity else "")
                + "), timeout, output watchdog",
            ),
            Layer(
                "cgroups",
                self._cgroups is not None,
                f"cgroup v{self._cgroups.version} per job: memory of all its processes, "
                "CPU quota, process count"
                if self._cgroups
                else "not root or no writable memory/pids/cpu controllers: "
                "memory is limited per process only and jobs share the CPU",
            ),
            Layer(
                "seccomp",
                seccomp_available(),
                "filter on sockets, ptrace, mount, namespaces, bpf"
                if seccomp_available()
                else "libseccomp/pyseccomp not available",
            ),
        ]

    def _command(
        self, phase: str, in_dir: Path, out_dir: Path, limits: Limits, uid: int | None
    ) -> list[str]:
        if self._mode == "bwrap":
            view_in, view_out = VIEW_IN, VIEW_OUT
            prefix = [
                *self._bwrap_prefix(limits),
                "--perms",
                "0755",
                "--dir",
                str(Path(VIEW_IN).parent),
                "--ro-bind",
                str(in_dir),
                VIEW_IN,
                "--bind",
                str(out_dir),
                VIEW_OUT,
            ]
        else:
            view_in, view_out = str(in_dir), str(out_dir)
            prefix = self._unshare_prefix() if self._mode == "unshare" else []
        drop = [] if uid is None else self._drop_privileges(uid)
        child = [
            sys.executable,
            "-s",
            "-B",
            "-P",
            "-m",
            "grader.child",
            phase,
            view_in,
            view_out,
            str(int(self.identity)),
        ]
        if self._mode == "unshare":
            # The mount namespace needs its own /tmp before privileges are dropped.
            script = f'mount -t tmpfs -o size={limits.tmp_bytes},mode=1777 tmpfs /tmp && exec "$@"'
            return [*prefix, "/bin/sh", "-c", script, "sh", *drop, *child]
        return [*prefix, *drop, *child]

    def _bwrap_prefix(self, limits: Limits) -> list[str]:
        assert self._bwrap
        argv = [
            self._bwrap,
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(limits.tmp_bytes),
            "--tmpfs",
            "/tmp",
            "--chdir",
            "/tmp",
        ]
        if not self._root:
            argv.append("--unshare-user")
        for path in SYSTEM_PATHS:
            argv += ["--ro-bind-try", path, path]
        for link in ("/bin", "/lib", "/lib64", "/sbin"):
            if os.path.islink(link):
                argv += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                argv += ["--ro-bind", link, link]
        python_paths = _python_paths()
        # bwrap would make the parents unlistable, and import machinery lists them.
        for parent in sorted({str(a) for p in python_paths for a in Path(p).parents} - {"/"}):
            argv += ["--perms", "0755", "--dir", parent]
        for path in python_paths:
            argv += ["--ro-bind", path, path]
        for device in sorted(Path("/dev").glob("nvidia*")):
            argv += ["--dev-bind-try", str(device), str(device)]
        for key, value in _clean_env(limits).items():
            argv += ["--setenv", key, value]
        if self._root:
            # bwrap drops every capability by default; keep just what setpriv needs to switch uid.
            argv += [
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
                "--cap-add",
                "CAP_SETPCAP",
            ]
        return argv

    def _unshare_prefix(self) -> list[str]:
        assert self._unshare
        return [
            self._unshare,
            "--net",
            "--pid",
            "--ipc",
            "--uts",
            "--mount",
            "--fork",
            "--kill-child",
            "--mount-proc",
        ]

    def _drop_privileges(self, job_uid: int) -> list[str]:
        assert self._setpriv
        uid = str(job_uid)
        return [
            self._setpriv,
            "--reuid",
            uid,
            "--regid",
            uid,
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]

    def _works(self, prefix: list[str]) -> bool:
        """bwrap can be installed yet unusable (no user namespaces, nested containers)."""
        try:
            done = subprocess.run(
                [*prefix, sys.executable, "-c", "pass"],
                timeout=60,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0

    def _sweep(self, pid: int, uid: int | None) -> None:
        """Nothing a job started may outlive it: its process group, then anything of its uid."""
        _kill_group(pid)
        if uid is not None:
            for _ in range(3):
                if not _kill_uid(uid):
                    break
                time.sleep(0.05)


def _usable_cgroups() -> Cgroups | None:
    """Cgroups where a job cgroup can really be made (a probe is created and removed)."""
    if not hasattr(os, "geteuid"):
        return None
    cgroups = Cgroups.detect()
    if cgroups is None:
        return None
    try:
        cgroups.create(f"probe-{os.getpid()}", 64 << 20, 8, 1).kill_all_and_remove()
    except OSError:
        return None
    return cgroups


def _enter_cgroup(cgroup: JobCgroup) -> list[str]:
    """A shell that moves itself into the job's cgroup, then becomes the job: no process of the
    job ever runs outside it."""
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *map(str, cgroup.procs_files), "--"]


def _supervise(
    process: subprocess.Popen[bytes], out_dir: Path, limits: Limits
) -> tuple[bool, bool]:
    """Wait for the child, killing it at the deadline or when its output grows past the cap."""
    deadline = time.monotonic() + limits.timeout_seconds
    exceeded = threading.Event()
    stop = threading.Event()

    def watch_output() -> None:
        while not stop.wait(0.25):
            if _tree_size(out_dir) > limits.max_output_bytes:
                exceeded.set()
                _kill_group(process.pid)
                return

    watcher = threading.Thread(target=watch_output, daemon=True)
    watcher.start()
    timed_out = False
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process.pid)
        process.wait()
    finally:
        stop.set()
        watcher.join()
    return timed_out, exceeded.is_set()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _kill_uid(uid: int) -> bool:
    """SIGKILL every process owned by uid; True if any was found."""
    found = False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            os.kill(int(entry.name), signal.SIGKILL)
            found = True
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _tree_size(root: Path) -> int:
    """Disk used under root: every entry's blocks, folders and links too, and a charge per entry
    so that a flood of empty files or hard links counts against the cap."""
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                total += entry.stat(follow_symlinks=False).st_blocks * 512 + ENTRY_CHARGE
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
    return total


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return printable(handle.read().decode("utf-8", "replace"), keep_lines=True)


def _clean_env(limits: Limits) -> dict[str, str]:
    threads = str(limits.threads)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "GRADER_MEMORY_BYTES": str(limits.memory_bytes),
        "GRADER_MAX_PROCESSES": str(limits.max_processes),
        "GRADER_MAX_FILE_BYTES": str(limits.max_file_bytes),
        "GRADER_MAX_OPEN_FILES": str(limits.max_open_files),
        "GRADER_CPU_SECONDS": str(int(limits.timeout_seconds * 2) + 10),
    }


def _python_paths() -> list[str]:
    """The interpreter, its libraries and this package: all a job needs beyond /usr.

    Not the rest of sys.path: it holds the working directory, which may be /tmp or the repo.
    """
    package = Path(grader.__file__).resolve().parent
    candidates = {
        sys.prefix,
        sys.base_prefix,
        str(package),
        str(Path(sys.executable).resolve().parent),
        *site.getsitepackages(),
    }
    paths = sorted({os.path.realpath(p) for p in candidates})
    # Nested paths are already inside their parent's bind.
    return [
        p
        for p in paths
        if not p.startswith("/usr/") and not any(p != q and p.startswith(q + os.sep) for q in paths)
    ]


def _reachable_by_others(path: Path) -> bool:
    """Whether an unprivileged uid could run this file (every parent traversable by 'other')."""
    return all(parent.stat().st_mode & 1 for parent in Path(os.path.realpath(path)).parents)
