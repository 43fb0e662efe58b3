"""course/reviewed.toml: what an instructor looked at and cleared.

Rows the integrity audit flagged:

    [[reviewed]]
    student = "alice"
    content_hash = "3f5a..."   # the row's content_hash (leaderboard.csv): this exact file only
    note = "explained the tables in office hours"   # optional, for the instructor

Pairs copy detection found alike (similarity.csv names them and their files' hashes):

    [[pair]]
    students = ["alice", "bob"]
    content_hashes = ["3f5a...", "9c1e..."]   # in the students' order
    note = "lab partners, allowed to share the loader"

A later submission has another content hash and is audited, and compared, afresh.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from grader.core.errors import UserError

FILE_NAME = "reviewed.toml"
KEYS = {"student", "content_hash", "note"}
PAIR_KEYS = {"students", "content_hashes", "note"}
# Both sides of a cleared pair, (student, content hash) each, in the students' order.
PairKey = tuple[str, str, str, str]


class ReviewError(UserError):
    """The review file is unreadable or malformed; the message names the file and the key."""


def reviewed_path(assignments: Path) -> Path:
    """The review file beside a course's assignments folder (course/reviewed.toml)."""
    return assignments.parent / FILE_NAME


def load_reviewed(path: Path) -> frozenset[tuple[str, str]]:
    """(student, content hash) pairs cleared by review; none when the file does not exist."""
    entries = _tables(path, "reviewed")
    return frozenset(_entry(path, i, entry) for i, entry in enumerate(entries))


def load_reviewed_pairs(path: Path) -> frozenset[PairKey]:
    """Pairs of files cleared by review, each as pair_key orders it."""
    entries = _tables(path, "pair")
    return frozenset(_pair(path, i, entry) for i, entry in enumerate(entries))


def pair_key(first: tuple[str, str], second: tuple[str, str]) -> PairKey:
    """Two (student, content hash) sides in the students' order, whichever came first."""
    (a, hash_a), (b, hash_b) = sorted([first, second])
    return a, hash_a, b, hash_b


def _tables(path: Path, name: str) -> list[Any]:
    if not path.is_file():
        return []
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReviewError(f"{path}: not valid TOML ({exc})") from None
    entries = document.get(name, [])
    lists = all(isinstance(document.get(key, []), list) for key in ("reviewed", "pair"))
    if set(document) - {"reviewed", "pair"} or not lists:
        raise ReviewError(f"{path}: expected only [[reviewed]] and [[pair]] tables")
    return list(entries)


def _entry(path: Path, index: int, entry: object) -> tuple[str, str]:
    where = f"{path}: key 'reviewed[{index}]"
    table = _table(entry, KEYS, where)
    for key in ("student", "content_hash"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise ReviewError(f"{where}.{key}' must be a non-empty string")
    return table["student"], table["content_hash"]


def _pair(path: Path, index: int, entry: object) -> PairKey:
    where = f"{path}: key 'pair[{index}]"
    table = _table(entry, PAIR_KEYS, where)
    for key in ("students", "content_hashes"):
        value = table.get(key)
        if not (isinstance(value, list) and len(value) == 2):
            raise ReviewError(f"{where}.{key}' must be an array of two strings")
        if not all(isinstance(v, str) and v for v in value):
            raise ReviewError(f"{where}.{key}' must be an array of two strings")
    students, hashes = table["students"], table["content_hashes"]
    return pair_key((students[0], hashes[0]), (students[1], hashes[1]))


def _table(entry: object, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ReviewError(f"{where}' must be a table")
    for key in entry:
        if key not in keys:
            raise ReviewError(f"{where}.{key}' is not a known setting")
    return entry
