"""Folder trees a job wrote, opened and removed one folder fd at a time.

A job can nest folders deeper than a path may be long (PATH_MAX) and deeper than Python may
recurse, and can make its folders unreadable: nothing here builds a path longer than one name,
recurses, or follows a link.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_folder(name: str, parent: int) -> int:
    """An fd of the folder `name` in the folder fd `parent`, never through a link (that fails
    with NotADirectoryError); a folder its owner made unreadable (mode 000) is opened up first."""
    try:
        return os.open(name, FOLDER, dir_fd=parent)
    except PermissionError:
        if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise
        os.chmod(name, 0o700, dir_fd=parent)
        return os.open(name, FOLDER, dir_fd=parent)


def remove_tree(path: Path) -> None:
    """Remove path and everything under it, however deep or locked a job left it. Never raises:
    what cannot be removed stays, for a later remove_stale_workspaces() to try again."""
    with contextlib.suppress(OSError):
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _remove(path.name, parent)
        finally:
            os.close(parent)


def _remove(name: str, parent: int) -> None:
    """Depth first, holding one folder fd: going down opens a subfolder by name, going back up
    opens "..", which must be the folder we came from (else stop rather than remove elsewhere)."""
    try:
        fd = open_folder(name, parent)
    except NotADirectoryError:  # a file or a link: remove it, never what it points to
        os.unlink(name, dir_fd=parent)
        return
    except FileNotFoundError:
        return
    try:
        # Per level below `parent`: the folder's name, its parent's identity, subfolders left.
        levels = [(name, _identity(parent), _clear(fd))]
        while levels:
            folder, above, subfolders = levels[-1]
            if subfolders:
                child, here = subfolders.pop(), _identity(fd)
                try:
                    down = open_folder(child, fd)
                except OSError:  # gone or replaced since listed, or not ours: it stays
                    continue
                os.close(fd)
                fd = down
                levels.append((child, here, _clear(fd)))
                continue
            up = os.open("..", FOLDER, dir_fd=fd)
            os.close(fd)
            fd = up
            if _identity(fd) != above:
                raise OSError(f"{folder} was moved while it was being removed")
            with contextlib.suppress(OSError):
                os.rmdir(folder, dir_fd=fd)
            levels.pop()
    finally:
        os.close(fd)


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _clear(fd: int) -> list[str]:
    """Unlink everything in the folder fd but its subfolders, whose names it returns."""
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o700)  # its entries can only be unlinked from a writable folder
    with os.scandir(fd) as entries:
        listed = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_folder in listed:
        if not is_folder:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
    return [name for name, is_folder in listed if is_folder]
