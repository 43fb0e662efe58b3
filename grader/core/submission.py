"""Finding submissions on disk: `<root>/<student>/<assignment>.py` plus optional weights.

Discovery never imports student code; it only looks at names, sizes and bytes, and turns
anything odd about a folder into a problem attached to that submission, not an exception.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from grader.core.errors import UserError
from grader.core.files import megabytes
from grader.core.text import escaped, folded, one_line

WEIGHT_SUFFIXES = (".safetensors", ".pt")
MAX_SOURCE_BYTES = 1 << 20
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
META_FILE = "student.toml"  # optional, per student folder: written by the LMS export
META_BYTES = 4096
META_CHARS = 40  # the longest pseudonym, timestamp or source kept
# What every id the grader derives for an anonymized board starts with (grader.publish.
# anonymize); no pseudonym may, so none can pass for another student's derived id.
DERIVED_PREFIX = "anon-"


@dataclass(frozen=True)
class StudentMeta:
    """What `<student>/student.toml` says, validated: student- or LMS-controlled text, so
    capped, one line, and shown only as inert text. `ignored` says what was dropped and why."""

    pseudonym: str | None = None  # shown instead of the id on an anonymized board
    late: bool | None = None  # submitted after the deadline, as the LMS export says
    submitted_at: str | None = None  # ISO 8601
    source: str | None = None  # where the submission came from (e.g. "canvas")
    # The LMS's id for the student (Canvas's user id, Moodle's participant id), which its
    # gradebook import matches grades on.
    lms_user_id: str | None = None
    ignored: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The kept values, for the store."""
        values = {
            "pseudonym": self.pseudonym,
            "late": self.late,
            "submitted_at": self.submitted_at,
            "source": self.source,
            "lms_user_id": self.lms_user_id,
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StudentMeta:
        """Back from the store: validated again, as if read from a file."""
        return _parse_meta(raw, [])


class SubmissionsError(UserError):
    """The submissions folder itself is unusable (missing, empty, not a folder)."""


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: str
    source: Path
    weights: Path | None
    content_hash: str
    problem: str | None = None
    meta: StudentMeta = field(default_factory=StudentMeta)

    @property
    def key(self) -> tuple[str, str]:
        return (self.assignment, self.student)


def discover(root: Path, assignments: Iterable[str], max_weights_bytes: int) -> list[Submission]:
    """Every `<student>/<assignment>.py` under root, sorted by assignment then student; folders
    that would collide get a problem instead of a row of their own."""
    if not root.exists():
        raise SubmissionsError(f"submissions folder {root} does not exist")
    if not root.is_dir():
        raise SubmissionsError(f"{root} is not a folder")
    wanted = set(assignments)
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder.is_dir() or folder.is_symlink()):
            continue
        found.extend(_from_folder(root, folder, wanted, max_weights_bytes))
    if not found:
        names = ", ".join(f"<student>/{a}.py" for a in sorted(wanted))
        raise SubmissionsError(f"no submissions in {root} (expected files like {names})")
    return mark_duplicates(sorted(found, key=lambda s: s.key))


def from_file(source: Path, assignment: str, max_weights_bytes: int) -> Submission:
    """A single file graded on its own, as `grader check` does; the student id is its folder's."""
    student = escaped(source.resolve().parent.name) or "student"
    problem = _source_problem(source)
    weights, weights_problem = _find_weights(source, assignment, max_weights_bytes)
    return Submission(
        student,
        assignment,
        source,
        weights,
        _content_hash(source, weights, max(MAX_SOURCE_BYTES, max_weights_bytes)),
        problem or weights_problem,
    )


def assignment_of(source: Path, known: Iterable[str]) -> str:
    """The assignment a lone file is for: its name (har.py), else the one known assignment its
    name contains as a word (my_har.py, har_v2.py); else its name, which the caller rejects."""
    words = set(re.split(r"[^a-z0-9]+", source.stem.lower()))
    named = [name for name in known if name == source.stem or name in words]
    return named[0] if len(named) == 1 else source.stem


def mark_duplicates(submissions: list[Submission]) -> list[Submission]:
    """Folders whose names differ only in case would overwrite each other's rows."""
    seen: dict[tuple[str, str], list[str]] = {}
    for sub in submissions:
        seen.setdefault((sub.assignment, sub.student.casefold()), []).append(sub.student)
    marked = []
    for sub in submissions:
        names = seen[(sub.assignment, sub.student.casefold())]
        if len(names) > 1 and not sub.problem:
            sub = replace(
                sub,
                problem="duplicate student id: folders "
                + ", ".join(names)
                + " differ only in case",
            )
        marked.append(sub)
    return marked


def _from_folder(
    root: Path, folder: Path, wanted: set[str], max_weights_bytes: int
) -> list[Submission]:
    student = escaped(folder.name)  # a name that is not UTF-8 shows its bytes as \xNN
    sources = sorted(p for p in folder.glob("*.py") if p.stem in wanted)
    if folder.is_symlink() and not _inside(folder.resolve(), root.resolve()):
        return [
            _rejected(
                student, p.stem, p, "submission folder is a symlink out of the submissions tree"
            )
            for p in sources
        ]
    if not STUDENT_ID.fullmatch(student):  # match() would let a trailing newline through
        problem = _id_problem(folder.name, student)
        return [_rejected(student, p.stem, p, problem) for p in sources]
    meta = read_meta(folder / META_FILE)
    return [replace(from_file(p, p.stem, max_weights_bytes), meta=meta) for p in sources]


def _id_problem(name: str, shown: str) -> str:
    if shown != name:
        return f"folder name '{shown}' is not UTF-8; rename the folder to the student's id"
    return f"folder name {name!r} is not a valid student id"


def read_meta(path: Path) -> StudentMeta:
    """A student folder's metadata file; anything wrong with it is ignored and said, never an
    error: the submission grades without it."""
    if not path.exists() and not path.is_symlink():
        return StudentMeta()
    if path.is_symlink() or not path.is_file():
        return StudentMeta(ignored=(f"{path.name} is not a regular file",))
    if path.stat().st_size > META_BYTES:
        return StudentMeta(ignored=(f"{path.name} is over {megabytes(META_BYTES)}",))
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reason = one_line(str(exc), META_CHARS * 2)
        return StudentMeta(ignored=(f"{path.name} is not valid TOML ({reason})",))
    return _parse_meta(raw, [])


def _parse_meta(raw: dict[str, Any], ignored: list[str]) -> StudentMeta:
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        shown = one_line(str(key), META_CHARS)
        if key == "late":
            if isinstance(value, bool):
                kept[key] = value
            else:
                ignored.append("'late' must be true or false")
        elif key in ("pseudonym", "source", "submitted_at", "lms_user_id"):
            if key == "submitted_at" and isinstance(value, datetime):
                value = value.isoformat()  # an unquoted TOML date-time
            if key == "lms_user_id" and type(value) is int:
                value = str(value)  # written by hand without quotes
            text = one_line(value, META_CHARS + 1) if isinstance(value, str) else None
            if not text:
                ignored.append(f"{key!r} must be a non-empty string")
            elif len(text) > META_CHARS:
                ignored.append(f"{key!r} is longer than {META_CHARS} characters")
            elif key == "submitted_at" and not _is_timestamp(text):
                ignored.append("'submitted_at' is not an ISO 8601 time")
            elif key == "pseudonym" and folded(text).startswith(DERIVED_PREFIX):
                ignored.append(
                    f"'pseudonym' {text!r} starts with {DERIVED_PREFIX!r}, as derived ids do"
                )
            else:
                kept[key] = text
        else:
            ignored.append(f"unknown key {shown!r}")
    return StudentMeta(**kept, ignored=tuple(ignored))


def _is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _rejected(student: str, assignment: str, source: Path, problem: str) -> Submission:
    return Submission(student, assignment, source, None, "", problem)


def _source_problem(source: Path) -> str | None:
    if source.is_symlink():
        return f"{source.name} is a symlink; submit a regular file"
    if not source.is_file():  # a folder or a FIFO would fail or block when read
        return f"{source.name} is not a regular file"
    size = source.stat().st_size
    if size > MAX_SOURCE_BYTES:
        return (
            f"{source.name} is {megabytes(size)}; source files are limited to "
            f"{megabytes(MAX_SOURCE_BYTES)}"
        )
    data = source.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{source.name} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
    if "\x00" in text:
        return f"{source.name} contains NUL bytes; it looks like a binary file, not Python"
    try:
        compile(text, str(source), "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"{source.name} is not valid Python: {exc.msg} (line {exc.lineno})"
    return None


def _find_weights(
    source: Path, assignment: str, max_weights_bytes: int
) -> tuple[Path | None, str | None]:
    candidates = [source.with_name(assignment + s) for s in WEIGHT_SUFFIXES]
    present = [p for p in candidates if p.exists() or p.is_symlink()]
    if not present:
        return None, None
    weights = present[0]
    if len(present) > 1:
        return weights, f"both {present[0].name} and {present[1].name} present; submit one"
    if weights.is_symlink() or not weights.is_file():
        return weights, f"{weights.name} must be a regular file"
    size = weights.stat().st_size
    if size > max_weights_bytes:
        return weights, (
            f"{weights.name} is {megabytes(size)}; weights are limited to "
            f"{megabytes(max_weights_bytes)}"
        )
    return weights, None


def _content_hash(source: Path, weights: Path | None, max_bytes: int) -> str:
    """What regrading keys on: the source bytes and, when present, the weights bytes.

    A file over the limit is graded as a problem without being read, so only its size counts.
    """
    digest = hashlib.sha256()
    for path in (source, weights):
        if path is None or path.is_symlink() or not path.is_file():
            continue
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        if size > max_bytes:
            continue
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
