"""The unshare fallback's filesystem view, made as root inside the job's new mount namespace:

    python -m grader.sandbox.private_view TMP_BYTES [--hide DIR]... [--keep P]...
        [--writable P]... -- COMMAND...

/tmp becomes a fresh size-capped tmpfs, and each hidden DIR (a folder the job uid may not
traverse, such as /root holding the interpreter) an empty read-only one. Mounting over a folder
hides everything below it, so each path to keep is opened first and bound back in place from
that open handle after the mounts, read-only unless writable. Then COMMAND replaces this
process. Nothing here changes the host's own mounts.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mount(2) flags, from <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
TMP = "/tmp"


def main(argv: list[str]) -> None:
    split = argv.index("--")
    tmp_bytes, options, command = int(argv[0]), argv[1:split], argv[split + 1 :]
    pairs = list(zip(options[::2], options[1::2], strict=True))
    hidden = [TMP, *(path for flag, path in pairs if flag == "--hide")]
    kept = [(path, flag == "--writable") for flag, path in pairs if flag != "--hide"]
    handles = [(os.open(p, os.O_PATH), p, w) for p, w in kept if _below(p, hidden)]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below leaks to the host's mounts
    _mount("tmpfs", TMP, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_bytes},mode=1777")
    for folder in hidden[1:]:
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for fd, path, writable in handles:
        _bind_back(fd, path, writable)
        os.close(fd)
    for folder in hidden[1:]:  # the job may reach through these, not write into them
        _mount(None, folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")
    os.execv(command[0], command)


def _below(path: str, folders: list[str]) -> bool:
    return any(path.startswith(folder + "/") for folder in folders)


def _bind_back(fd: int, path: str, writable: bool) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.isdir(f"/proc/self/fd/{fd}"):
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        open(path, "a").close()
    _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    if not writable:
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    encoded = [None if s is None else s.encode() for s in (source, target, fstype, data or None)]
    if libc.mount(*encoded[:3], ctypes.c_ulong(flags), encoded[3]) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


if __name__ == "__main__":
    main(sys.argv[1:])
