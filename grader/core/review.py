"""course/reviewed.toml: rows an instructor looked at after the integrity audit flagged them.

    [[reviewed]]
    student = "alice"
    content_hash = "3f5a..."   # the row's content_hash (leaderboard.csv): this exact file only
    note = "explained the tables in office hours"   # optional, for the instructor

A later submission has another content hash and is audited afresh.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from grader.core.errors import UserError

FILE_NAME = "reviewed.toml"
KEYS = {"student", "content_hash", "note"}


class ReviewError(UserError):
    """The review file is unreadable or malformed; the message names the file and the key."""


def reviewed_path(assignments: Path) -> Path:
    """The review file beside a course's assignments folder (course/reviewed.toml)."""
    return assignments.parent / FILE_NAME


def load_reviewed(path: Path) -> frozenset[tuple[str, str]]:
    """(student, content hash) pairs cleared by review; none when the file does not exist."""
    if not path.is_file():
        return frozenset()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReviewError(f"{path}: not valid TOML ({exc})") from None
    entries = document.get("reviewed", [])
    if set(document) - {"reviewed"} or not isinstance(entries, list):
        raise ReviewError(f"{path}: expected only [[reviewed]] tables")
    return frozenset(_entry(path, i, entry) for i, entry in enumerate(entries))


def _entry(path: Path, index: int, entry: object) -> tuple[str, str]:
    where = f"{path}: key 'reviewed[{index}]"
    if not isinstance(entry, dict):
        raise ReviewError(f"{where}' must be a table")
    for key in entry:
        if key not in KEYS:
            raise ReviewError(f"{where}.{key}' is not a known setting")
    for key in ("student", "content_hash"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ReviewError(f"{where}.{key}' must be a non-empty string")
    return entry["student"], entry["content_hash"]
