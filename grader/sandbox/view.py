"""What a job sees of the filesystem: one plan, two ways to make it.

`plan()` lists the view as data: /usr and a few files of /etc, the interpreter and this package,
the job's own folders, a fresh /proc, a minimal /dev, a size-capped private /tmp. A cold job gets
it from bubblewrap (`bwrap_options`); a job forked from a warm process gets it from `build`,
which mounts the same plan on a fresh root and pivots into it. Only root can `build`.
"""

from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# What a job's view holds beyond the interpreter: libraries, users, time zone.
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
MERGED_USR_LINKS = ("/bin", "/lib", "/lib64", "/sbin")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# mount(2) flags, from <sys/mount.h>
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # syscall numbers; glibc has no wrapper


@dataclass(frozen=True)
class Mount:
    kind: str  # "proc", "dev", "tmpfs", "dir", "bind", "symlink" or "device"
    target: str
    source: str = ""
    writable: bool = False
    size: int = 0


def plan(visible: list[str], binds: list[tuple[str, str, bool]], tmp_bytes: int) -> list[Mount]:
    """The view: `visible` paths read-only at their own place, `binds` (source, target,
    writable) where they belong, every folder on the way traversable (0755)."""
    system = [p for p in SYSTEM_PATHS if os.path.lexists(p)]
    visible = [p for p in visible if not any(p.startswith(q + "/") for q in system)]
    targets = [*system, *visible, *(target for _, target, _ in binds)]
    mounts = [Mount("proc", "/proc"), Mount("dev", "/dev"), Mount("tmpfs", "/tmp", size=tmp_bytes)]
    # Folders made on the way are root-only unless made otherwise, and a job uid must traverse
    # them all: /etc to reach the loader cache, a venv's parents to import anything.
    mounts += [Mount("dir", p) for p in sorted({str(a) for t in targets for a in Path(t).parents})
               if p != "/"]  # fmt: skip
    mounts += [Mount("bind", path, path) for path in system]
    for link in MERGED_USR_LINKS:
        if os.path.islink(link):
            mounts.append(Mount("symlink", link, os.readlink(link)))
        elif os.path.isdir(link):
            mounts.append(Mount("bind", link, link))
    mounts += [Mount("bind", path, path) for path in visible]
    mounts += [Mount("bind", target, source, writable) for source, target, writable in binds]
    mounts += [Mount("device", str(d), str(d)) for d in sorted(Path("/dev").glob("nvidia*"))]
    return mounts


def bwrap_options(mounts: list[Mount]) -> list[str]:
    options: list[str] = []
    for m in mounts:
        options += {
            "proc": ["--proc", m.target],
            "dev": ["--dev", m.target],
            "tmpfs": ["--perms", "1777", "--size", str(m.size), "--tmpfs", m.target],
            "dir": ["--perms", "0755", "--dir", m.target],
            "bind": ["--bind" if m.writable else "--ro-bind", m.source, m.target],
            "symlink": ["--symlink", m.source, m.target],
            "device": ["--dev-bind-try", m.source, m.target],
        }[m.kind]
    return options


def to_data(mounts: list[Mount]) -> list[dict[str, Any]]:
    return [asdict(m) for m in mounts]


def from_data(data: list[dict[str, Any]]) -> list[Mount]:
    return [Mount(**item) for item in data]


def build(mounts: list[Mount], root: str) -> None:
    """Mount the plan on a fresh tmpfs at root (an empty folder) and make it this process's /.

    Run as root, in a new mount namespace (and, for /proc, as a process of a new pid namespace).
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing here leaks to the host's mounts
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for m in mounts:
        _make(m, root + m.target)
    old = os.path.join(root, ".old-root")
    os.mkdir(old)
    _pivot_root(root, old)
    os.chdir("/")
    umount("/.old-root")
    os.rmdir("/.old-root")


def _make(m: Mount, target: str) -> None:
    if m.kind == "symlink":
        os.symlink(m.source, target)
        return
    if m.kind == "device" and not os.path.exists(m.source):
        return
    if os.path.lexists(target):
        pass  # already there, inside an earlier mount
    elif m.kind in ("bind", "device") and not os.path.isdir(m.source):
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        open(target, "a").close()
    else:
        os.makedirs(target, mode=0o755)
        os.chmod(target, 0o755)  # whatever the umask
    if m.kind == "proc":
        mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    elif m.kind == "tmpfs":
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={m.size},mode=1777")
    elif m.kind == "dev":
        _make_dev(target)
    elif m.kind in ("bind", "device"):
        mount(m.source, target, None, MS_BIND | MS_REC)
        if not m.writable and m.kind == "bind":
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _make_dev(target: str) -> None:
    """A minimal /dev, as bubblewrap's --dev gives: the harmless character devices, a shm
    folder, and the fd links."""
    mount("tmpfs", target, "tmpfs", MS_NOSUID, "mode=0755")
    for name in DEVICES:
        path = os.path.join(target, name)
        open(path, "a").close()
        mount(f"/dev/{name}", path, None, MS_BIND)
    os.mkdir(os.path.join(target, "shm"), 0o1777)
    os.chmod(os.path.join(target, "shm"), 0o1777)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                       ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(link, os.path.join(target, name))


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    args = [None if s is None else s.encode() for s in (source, target, fstype, data or None)]
    if libc.mount(*args[:3], ctypes.c_ulong(flags), args[3]) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def umount(target: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(target.encode(), MNT_DETACH) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"umount {target}: {os.strerror(error)}")


def _pivot_root(new_root: str, put_old: str) -> None:
    number = PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown syscall number on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, new_root.encode(), put_old.encode()) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"pivot_root {new_root}: {os.strerror(error)}")
