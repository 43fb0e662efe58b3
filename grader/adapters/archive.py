"""Reading an LMS export, a zip or a folder, without extracting it.

Nothing in an export is trusted: member names are only ever parsed, never used as paths to
write to, and a file is read only when it is chosen, through a size cap that does not believe
the zip's own header. Symlinks, paths that climb out of the export, encrypted members and
oversized listings are reported instead of read.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.core.errors import UserError

MAX_MEMBERS = 100_000
# Files an LMS or an operating system adds that are nobody's submission.
JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|\._)")


class ExportError(UserError):
    """The export as a whole cannot be read: missing, not a zip or a folder, corrupt, too big."""


class TooBig(Exception):
    """A member holds more bytes than the cap it was read with."""


@dataclass(frozen=True)
class Member:
    """One file of the export: its path inside the export (with /), and how to read it."""

    path: str
    size: int
    _read: Callable[[int], bytes]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def read(self, cap: int) -> bytes:
        """The bytes, or TooBig if there are more than cap, whatever the listing said."""
        if self.size > cap:
            raise TooBig
        data = self._read(cap + 1)
        if len(data) > cap:
            raise TooBig
        return data


@dataclass(frozen=True)
class Skipped:
    """A member that was not read, and why."""

    path: str
    reason: str


@contextmanager
def open_export(path: Path) -> Iterator[tuple[list[Member], list[Skipped]]]:
    """The export's files, sorted by path, and the members refused on sight."""
    if path.is_dir():
        yield _folder(path)
        return
    if not path.is_file():
        raise ExportError(f"{path} is neither a zip file nor a folder")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExportError(f"{path} is not a readable zip file ({exc})") from None
    with archive:
        yield _zip(archive, path)


def _zip(archive: zipfile.ZipFile, path: Path) -> tuple[list[Member], list[Skipped]]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ExportError(f"{path} lists {len(infos)} files; at most {MAX_MEMBERS} are read")
    members, skipped = [], []
    for info in infos:
        name = info.filename.replace("\\", "/")
        if info.is_dir() or JUNK.search(name):
            continue
        mode = info.external_attr >> 16
        problem = _unsafe(name)
        if not problem and stat.S_ISLNK(mode):
            problem = "a symlink; not followed"
        if not problem and info.flag_bits & 0x1:
            problem = "encrypted"
        if problem:
            skipped.append(Skipped(name, problem))
            continue

        def read(limit: int, info: zipfile.ZipInfo = info) -> bytes:
            with archive.open(info) as handle:
                return handle.read(limit)

        members.append(Member(_clean(name), info.file_size, read))
    return sorted(members, key=lambda m: m.path), skipped


def _folder(root: Path) -> tuple[list[Member], list[Skipped]]:
    members, skipped = [], []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in sorted(files + [d for d in dirs if (here / d).is_symlink()]):
            path = here / name
            relative = path.relative_to(root).as_posix()
            if JUNK.search(relative):
                continue
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                kind = "a symlink; not followed" if stat.S_ISLNK(info.st_mode) else "not a file"
                skipped.append(Skipped(relative, kind))
                continue

            def read(limit: int, path: Path = path) -> bytes:
                with path.open("rb") as handle:
                    return handle.read(limit)

            members.append(Member(relative, info.st_size, read))
        if len(members) > MAX_MEMBERS:
            raise ExportError(f"{root} holds more than {MAX_MEMBERS} files")
    return sorted(members, key=lambda m: m.path), skipped


def _unsafe(name: str) -> str | None:
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a path that leaves the export"
    if any(ord(c) < 32 for c in name):
        return "a name with control characters"
    return None


def _clean(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))
