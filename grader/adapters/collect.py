"""`grader collect`: an LMS bulk download into `submissions/<student>/<assignment>.py`, plus
weights, plus lateness in `submissions/<student>/student.toml`.

The exports, as the LMSs write them:

- canvas ("Download Submissions"): one flat zip. Each uploaded file is named
  `<name>[_LATE]_<user id>_<file id>_<original name>`, where <name> is the sortable name with
  everything but letters, digits and _ removed, in lower case ("Doe, Jane": doejane). An
  anonymized assignment writes `anon_<id>` in place of name and user id. Text entries and links
  arrive as `..._text.html` and `..._link.html`. A file uploaded again under a name already
  taken is renamed `har-1.py`, `har-2.py`, ...; its file id is the larger.
- moodle ("Download all submissions"): one folder per student and plugin,
  `<Full Name>_<participant id>_assignsubmission_file_/<original name>`, or, with folders turned
  off, that prefix on each file's name. Blind marking writes "Participant" for the name. The
  download does not say who was late. A file uploaded again under a name already taken is
  renamed `har (1).py`, `har (2).py`, ...
- folder: `<student id>/<files>`, for submissions gathered any other way.

The student id is the export's name for the student made into a valid id (accents dropped,
other characters joined by '-'); a name with letters outside ASCII is reported, not guessed, and
so are two students who would share an id. Nothing is overwritten unless asked to: a file that
differs from the export's is reported and kept. Of a file uploaded several times the newest is
taken, and the summary says so. `student.toml` keeps the LMS's id for the student
(`lms_user_id`), which its gradebook import matches on.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from grader.adapters.archive import ExportError, Member, Skipped, TooBig, open_export
from grader.core.files import atomic_path, megabytes
from grader.core.submission import MAX_SOURCE_BYTES, STUDENT_ID, WEIGHT_SUFFIXES, assignment_of

STUDENT_FILE = "student.toml"
STUDENT_FILE_HEADER = "# written by `grader collect`; optional, may also be written by hand\n"
STUDENT_FILE_ORDER = ("pseudonym", "lms_user_id", "late", "submitted_at", "source")

CANVAS_ANONYMOUS = re.compile(
    r"^(?:(?P<late>late)_)?(?P<user>anon_[a-z0-9]+)_(?P<file>\d+)_(?P<original>.+)$", re.I
)
CANVAS_NAMED = re.compile(
    r"^(?P<name>\w+?)_(?:(?P<late>late)_)?(?P<user>\d+)_(?P<file>\d+)_(?P<original>.+)$", re.I
)
CANVAS_ENTRY = re.compile(r"_(text|link)\.html$")
MOODLE = re.compile(
    r"^(?P<name>.+)_(?P<user>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.*)$"
)
MOODLE_BLIND = "Participant"
# A name an LMS gave an upload whose name was taken: har-1.py (Canvas), har (1).py (Moodle).
RESUBMITTED = re.compile(r"^(?P<base>.+?)(?:-(?P<dash>\d+)| \((?P<paren>\d+)\))?(?P<suffix>\.\w+)$")


class Kept(Exception):
    """A student's files were left as they were; the message says why."""


class Format(StrEnum):
    CANVAS = "canvas"
    MOODLE = "moodle"
    FOLDER = "folder"


@dataclass(frozen=True)
class Owned:
    """A file of the export and the student it belongs to."""

    student: str
    lms_id: str  # the LMS's own id, which tells apart two students of one name
    original: str  # the file's name as the student uploaded it
    late: bool | None  # None: the export does not say
    member: Member
    upload: int | None = None  # the LMS's number for the upload, larger when later (Canvas's)


@dataclass(frozen=True)
class Options:
    known: tuple[str, ...]  # the course's assignment names
    assignment: str | None = None  # every Python file is for this one; else its name says
    replace: bool = False  # take the export's version of a file that differs
    max_weights_bytes: int = 64 << 20


@dataclass(frozen=True)
class Placed:
    student: str
    assignment: str
    files: tuple[str, ...]
    action: str  # new, unchanged or replaced
    newest: str = ""  # of several uploads of the file, which was taken and why


@dataclass
class Report:
    format: Format
    placed: list[Placed] = field(default_factory=list)
    problems: list[Skipped] = field(default_factory=list)  # what was not placed, and why
    late: list[str] = field(default_factory=list)  # students recorded as late


def collect(
    export: Path, to: Path, options: Options, export_format: Format | None = None
) -> Report:
    """Place every submission of the export under `to`; report what could not be placed."""
    if export.is_dir() and to.resolve().is_relative_to(export.resolve()):
        raise ExportError(f"{to} is inside the export {export}; collect into another folder")
    with open_export(export) as (members, skipped):
        fmt = export_format or detect_format(members, export)
        report = Report(fmt, problems=list(skipped))
        owned = _attribute(members, fmt, report)
        to.mkdir(parents=True, exist_ok=True)
        for student, files in sorted(_by_student(owned, report).items()):
            _collect_student(to, student, files, options, report)
    report.problems.sort(key=lambda p: p.path)
    return report


def detect_format(members: list[Member], export: Path) -> Format:
    """The format most of the export's files follow."""
    tops = [m.path for m in members]
    if not tops:
        raise ExportError(f"{export} holds no files")
    votes = {
        Format.MOODLE: sum(bool(MOODLE.match(p.split("/")[0])) for p in tops),
        Format.CANVAS: sum("/" not in p and bool(_canvas_match(p)) for p in tops),
        Format.FOLDER: sum("/" in p for p in tops),
    }
    best = max(votes, key=lambda f: votes[f])
    if votes[best] * 2 <= len(tops):
        raise ExportError(
            f"cannot tell the format of {export} (canvas, moodle or folder); pass --format"
        )
    return best


def student_id(name: str) -> str | None:
    """A valid student id from a person's name, or None if that would take a guess."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    if any(not c.isascii() and unicodedata.category(c)[0] in "LN" for c in folded):
        return None  # letters we cannot spell in ASCII without inventing a transliteration
    candidate = re.sub(r"[^A-Za-z0-9._]+", "-", folded).strip("-._").lower()
    return candidate if STUDENT_ID.match(candidate) else None


# --- whose file is it -------------------------------------------------------------------------


def _attribute(members: list[Member], fmt: Format, report: Report) -> list[Owned]:
    parse = {Format.CANVAS: _canvas, Format.MOODLE: _moodle, Format.FOLDER: _folder}[fmt]
    owned = []
    for member in members:
        found = parse(member)
        if isinstance(found, str):
            report.problems.append(Skipped(member.path, found))
        else:
            owned.append(found)
    return owned


def _canvas_match(name: str) -> re.Match[str] | None:
    return CANVAS_ANONYMOUS.match(name) or CANVAS_NAMED.match(name)


def _canvas(member: Member) -> Owned | str:
    if "/" in member.path:
        return "not at the top level, where Canvas puts every file"
    match = _canvas_match(member.path)
    if not match:
        if CANVAS_ENTRY.search(member.path):
            return "a text entry or link, not an uploaded file"
        return "does not follow Canvas's naming (<name>_<user id>_<file id>_<file name>)"
    user = match["user"]
    name = match.groupdict().get("name")
    student = student_id(name) if name else user
    if not student:
        return f"the name {name!r} does not make a valid student id; place it by hand"
    upload = int(match["file"])
    return Owned(student, user, match["original"], bool(match["late"]), member, upload)


def _moodle(member: Member) -> Owned | str:
    top, _, inner = member.path.partition("/")
    match = MOODLE.match(top)
    if not match:
        return "does not follow Moodle's naming (<full name>_<id>_assignsubmission_file_...)"
    if match["plugin"] != "file":
        return f"a Moodle {match['plugin']} entry, not an uploaded file"
    original = inner.rsplit("/", 1)[-1] if inner else match["rest"]
    name, user = match["name"], match["user"]
    student = f"participant-{user}" if name == MOODLE_BLIND else student_id(name)
    if not student:
        return f"the name {name!r} does not make a valid student id; place it by hand"
    return Owned(student, user, original, None, member)


def _folder(member: Member) -> Owned | str:
    top, _, inner = member.path.partition("/")
    if not inner:
        return "not in a student's folder"
    if not STUDENT_ID.match(top):
        return f"folder name {top!r} is not a valid student id"
    return Owned(top, top, inner.rsplit("/", 1)[-1], None, member)


def _by_student(owned: list[Owned], report: Report) -> dict[str, list[Owned]]:
    """Files by student id; students whose ids would collide are reported, all their files."""
    groups: dict[str, list[Owned]] = defaultdict(list)
    for item in owned:
        groups[item.student.casefold()].append(item)
    kept = {}
    for files in groups.values():
        people = sorted({(f.student, f.lms_id) for f in files})
        if len(people) > 1:
            who = ", ".join(f"{s} (id {i})" for s, i in people)
            for f in files:
                report.problems.append(
                    Skipped(f.member.path, f"students {who} would share one folder; place by hand")
                )
            continue
        kept[files[0].student] = files
    return kept


# --- what goes where --------------------------------------------------------------------------


def _collect_student(
    to: Path, student: str, files: list[Owned], options: Options, report: Report
) -> None:
    folder = to / student
    clash = _case_clash(to, student)
    if clash or folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        why = f"{clash} exists; ids must not differ only in case" if clash else "not a folder"
        for f in files:
            report.problems.append(Skipped(f.member.path, f"{to / student}: {why}"))
        return
    placed_any = False
    for name, (chosen, newest) in _choose(files, options, report).items():
        contents = _read(chosen, name, options.max_weights_bytes, report)
        if contents is None:
            continue
        try:
            action = _place(folder, name, contents, options.replace)
        except Kept as kept:
            report.problems.extend(Skipped(f.member.path, str(kept)) for f in chosen)
            continue
        report.placed.append(Placed(student, name, tuple(contents), action, newest))
        placed_any = True
    if placed_any:
        _record_student(folder, files, report)


def _case_clash(to: Path, student: str) -> str | None:
    if (to / student).exists():
        return None
    for other in to.iterdir():
        if other.name.casefold() == student.casefold():
            return other.name
    return None


def _choose(
    files: list[Owned], options: Options, report: Report
) -> dict[str, tuple[list[Owned], str]]:
    """Per assignment: its Python file, then its weights if any; and, where the file was
    uploaded several times, which upload was taken."""
    known, assignment = options.known, options.assignment
    sources: dict[str, list[Owned]] = defaultdict(list)
    weights: list[Owned] = []
    for f in files:
        suffix = PurePosixPath(f.original).suffix.lower()
        if suffix not in (".py", *WEIGHT_SUFFIXES):
            report.problems.append(Skipped(f.member.path, "not a .py file or weights"))
        elif suffix in WEIGHT_SUFFIXES:
            weights.append(f)
        elif target := assignment or _named(f.original, known):
            sources[target].append(f)
        else:
            report.problems.append(Skipped(f.member.path, _unnamed(known)))
    chosen: dict[str, list[Owned]] = {}
    said: dict[str, str] = {}
    for name, candidates in sources.items():
        if len(candidates) > 1:  # with --assignment, prefer the one whose name says so
            candidates = [c for c in candidates if _named(c.original, known) == name] or candidates
        newest = _newest(candidates)
        if newest:
            candidates, said[name] = [newest[0]], newest[1]
        if len(candidates) > 1:
            names = ", ".join(c.original for c in candidates)
            for c in candidates:
                report.problems.append(Skipped(c.member.path, f"several files for {name}: {names}"))
            continue
        chosen[name] = candidates
    by_target: dict[str | None, list[Owned]] = defaultdict(list)
    for w in weights:
        target = assignment or _named(w.original, known)
        by_target[target or (next(iter(sources)) if len(sources) == 1 else None)].append(w)
    for target, found in by_target.items():
        if target in chosen and len(found) == 1:
            chosen[target].append(found[0])
            continue
        why = "several weights files" if len(found) > 1 else "weights without their Python file"
        report.problems.extend(Skipped(w.member.path, why) for w in found)
    return {name: (files, said.get(name, "")) for name, files in chosen.items()}


def _newest(candidates: list[Owned]) -> tuple[Owned, str] | None:
    """Of one file uploaded several times (one name, or the LMS's renaming of it: har.py,
    har-1.py), the newest upload and what says so; None if these are not such uploads or
    their order is not known."""
    versions = [_version(c.original) for c in candidates]
    if len(candidates) < 2 or None in versions or len({v and v[0] for v in versions}) > 1:
        return None
    if all(c.upload is not None for c in candidates):
        order, by = [c.upload or 0 for c in candidates], "upload id"
    else:
        order, by = [v[1] if v else 0 for v in versions], "the number the LMS adds to a name"
    if len(set(order)) < len(order):
        return None
    ranked = [c for _, c in sorted(zip(order, candidates, strict=True), key=lambda p: p[0])]
    names = ", ".join(c.original for c in ranked)
    return ranked[-1], f"took {ranked[-1].original}, the newest of {names} (by {by})"


def _version(original: str) -> tuple[str, int] | None:
    """A file's name without the number an LMS adds to a name taken, and that number (0 for
    none); None for a name that is not a file name with a suffix."""
    match = RESUBMITTED.match(original)
    if not match:
        return None
    number = int(match["dash"] or match["paren"] or 0)
    return (match["base"] + match["suffix"]).casefold(), number


def _named(original: str, known: Collection[str]) -> str | None:
    """The assignment a file's name names (har.py, my_har.py, har-1.py as Canvas renames a
    resubmission), or None."""
    name = assignment_of(Path(original), known)
    return name if name in known else None


def _unnamed(known: Collection[str]) -> str:
    return f"its name names none of the assignments ({', '.join(sorted(known))}); pass --assignment"


def _read(
    chosen: list[Owned], assignment: str, max_weights_bytes: int, report: Report
) -> dict[str, bytes] | None:
    """The files to write, by their name in the student's folder."""
    contents = {}
    for f in chosen:
        suffix = PurePosixPath(f.original).suffix.lower()
        cap = MAX_SOURCE_BYTES if suffix == ".py" else max_weights_bytes
        try:
            contents[assignment + suffix] = f.member.read(cap)
        except TooBig:
            report.problems.append(
                Skipped(
                    f.member.path, f"larger than {megabytes(cap)}, the limit for {suffix} files"
                )
            )
            return None
        except Exception as exc:  # a corrupt member, a CRC error: that file only
            report.problems.append(Skipped(f.member.path, f"unreadable ({exc})"))
            return None
    return contents


def _place(folder: Path, assignment: str, contents: dict[str, bytes], replace: bool) -> str:
    """Write the files, all or none: the action taken, or Kept when writing would silently
    overwrite a file that differs (or a stale weights file would be left beside new code)."""
    stale = [
        folder / (assignment + s)
        for s in WEIGHT_SUFFIXES
        if assignment + s not in contents and (folder / (assignment + s)).exists()
    ]
    existing = {name: _existing(folder / name) for name in contents}
    odd = [name for name, old in existing.items() if old is False]
    if odd:
        raise Kept(f"{folder / odd[0]} is not a regular file; nothing written")
    changed = [n for n, old in existing.items() if old is not None and old != contents[n]]
    if (changed or stale) and not replace:
        what = ", ".join([*changed, *(p.name for p in stale)])
        raise Kept(f"kept {folder}: {what} differs from the export (--replace takes the export's)")
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        if existing[name] != data:
            with atomic_path(folder / name) as temp:
                temp.write_bytes(data)
    for path in stale:
        path.unlink()
    if all(old is None for old in existing.values()) and not stale:
        return "new"
    return "replaced" if changed or stale else "unchanged"


def _existing(path: Path) -> bytes | bool | None:
    """The bytes at path, None if nothing is there, False if something other than a file."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return False
    return path.read_bytes() if path.exists() else None


# --- student.toml -----------------------------------------------------------------------------


def _record_student(folder: Path, files: list[Owned], report: Report) -> None:
    """Where the export came from, and lateness: once late, a student stays late (another
    assignment's export, on time, must not erase it)."""
    if report.format is Format.FOLDER:
        return
    path = folder / STUDENT_FILE
    try:
        table = tomllib.loads(path.read_text()) if path.exists() else {}
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        report.problems.append(Skipped(str(path), f"unreadable, not updated ({exc})"))
        return
    late = any(f.late for f in files)
    updated = {**table, "source": str(report.format), **_lms_id(table, files[0], path, report)}
    if late or "late" in table or report.format is Format.CANVAS:
        updated["late"] = late or table.get("late") is True
    if updated.get("late") is True:
        report.late.append(folder.name)
    if updated == table:
        return
    text = _toml(updated)
    if text is None:
        report.problems.append(
            Skipped(
                str(path), "holds tables or lists that collect does not rewrite; edit it by hand"
            )
        )
        return
    with atomic_path(path) as temp:
        temp.write_text(text)


def _lms_id(table: dict[str, Any], owned: Owned, path: Path, report: Report) -> dict[str, str]:
    """The LMS's id for the student, to keep; none for an anonymized Canvas export (its id is
    the folder's name), nor where the file already names another (two people of one name)."""
    if owned.lms_id.startswith("anon_"):
        return {}
    kept = table.get("lms_user_id")
    if kept is not None and str(kept) != owned.lms_id:
        report.problems.append(
            Skipped(
                str(path),
                f"lms_user_id {str(kept)!r} kept, the export says {owned.lms_id!r}: "
                "is this folder another student of the same name?",
            )
        )
        return {}
    return {"lms_user_id": owned.lms_id}


def _toml(table: dict[str, Any]) -> str | None:
    """A flat table as TOML, our keys first; None if it holds more than flat values."""
    keys = [k for k in STUDENT_FILE_ORDER if k in table]
    keys += sorted(k for k in table if k not in STUDENT_FILE_ORDER)
    lines = [STUDENT_FILE_HEADER]
    for key in keys:
        value = _toml_value(table[key])
        if value is None:
            return None
        bare = re.fullmatch(r"[A-Za-z0-9_-]+", key)
        lines.append(f"{key if bare else json.dumps(key)} = {value}\n")
    return "".join(lines)


def _toml_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return None
