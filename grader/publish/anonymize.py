"""Boards without real student ids: each student's pseudonym (from student.toml), else a stable
id derived from the student id with the course's secret (an HMAC), which nobody can recompute
by hashing a roster.

No real id may survive anywhere on the page: the student column, the picture's labels, and the
free text of messages and log tails (a rejected folder's name, a duplicate-id message), where
every real id is replaced by that student's public name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from grader.core.results import Result
from grader.core.submission import StudentMeta

PREFIX = "anon-"


def derived_id(student: str, secret: bytes) -> str:
    digest = hmac.new(secret, student.encode(), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(digest).decode("ascii")[:10].lower()


def public_names(
    students: Iterable[str], meta: Mapping[str, StudentMeta], secret: bytes
) -> dict[str, str]:
    """Real id -> the name shown. A pseudonym is used only if it is nobody's real id and no
    other student chose it too; otherwise the derived id stands in."""
    students = sorted(set(students))
    real = {s.casefold() for s in students}
    chosen: dict[str, list[str]] = {}
    for student in students:
        pseudonym = meta.get(student, StudentMeta()).pseudonym
        if pseudonym and pseudonym.casefold() not in real:
            chosen.setdefault(pseudonym.casefold(), []).append(student)
    names = {}
    for student in students:
        pseudonym = meta.get(student, StudentMeta()).pseudonym
        unique = pseudonym is not None and len(chosen.get(pseudonym.casefold(), [])) == 1
        names[student] = pseudonym if unique and pseudonym else derived_id(student, secret)
    return names


def anonymize(
    results: Iterable[Result], meta: Mapping[str, StudentMeta], secret: bytes
) -> tuple[list[Result], dict[str, StudentMeta]]:
    """Students' rows under their public names, with real ids scrubbed from their text; the
    metadata re-keyed the same way (its pseudonyms, already shown, are kept). Reference rows
    keep their names."""
    results = list(results)
    names = public_names((r.student for r in results if not r.reference), meta, secret)
    scrub = _scrubber(names)
    shown = []
    for result in results:
        if result.reference:
            shown.append(replace(result, message=scrub(result.message)))
            continue
        shown.append(
            replace(
                result,
                student=names[result.student],
                message=scrub(result.message),
                log_tail=scrub(result.log_tail),
            )
        )
    public_meta = {names[s]: m for s, m in meta.items() if s in names}
    return shown, public_meta


def _scrubber(names: Mapping[str, str]) -> Callable[[str], str]:
    """Replace every real id, as a whole word and in any case, by its public name (the longest
    ids first, so one id inside another is not half replaced)."""
    if not names:
        return lambda text: text
    ordered = sorted(names, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![A-Za-z0-9])(" + "|".join(re.escape(s) for s in ordered) + r")(?![A-Za-z0-9])",
        re.IGNORECASE,
    )
    by_folded = {s.casefold(): names[s] for s in ordered}

    def scrub(text: str) -> str:
        return pattern.sub(lambda m: by_folded.get(m.group(1).casefold(), PREFIX), text)

    return scrub
