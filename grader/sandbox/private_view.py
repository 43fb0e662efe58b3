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

import os
import sys

from grader.sandbox.view import (
    MS_BIND,
    MS_NODEV,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
)
from grader.sandbox.view import mount as _mount

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


if __name__ == "__main__":
    main(sys.argv[1:])
