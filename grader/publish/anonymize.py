"""Boards without real student ids: each student's pseudonym (from student.toml), else a stable
id derived from the student id with the course's secret (an HMAC), which nobody can recompute
by hashing a roster.

No real id may survive anywhere on the page: the student column, the picture's labels, and the
free text of messages and log tails (a rejected folder's name, a duplicate-id message), where
every real id is replaced by that student's public name. Nor may two students stand under one
name: a pseudonym that is the same name as any other the board could show is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from grader.core.results import Result
from grader.core.submission import DERIVED_PREFIX, StudentMeta
from grader.core.text import folded

PREFIX = DERIVED_PREFIX


def derived_id(student: str, secret: bytes) -> str:
    digest = hmac.new(secret, student.encode(), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(digest).decode("ascii")[:10].lower()


def public_names(
    students: Iterable[str],
    meta: Mapping[str, StudentMeta],
    secret: bytes,
    references: Iterable[str] = (),
) -> dict[str, str]:
    """Real id -> the name shown: the student's pseudonym unless refused (see refusals), else
    the derived id."""
    students = sorted(set(students))
    refused = refusals(students, meta, references)
    names = {}
    for student in students:
        pseudonym = meta.get(student, StudentMeta()).pseudonym
        shown = pseudonym if student not in refused else None
        names[student] = shown or derived_id(student, secret)
    return names


def refusals(
    students: Iterable[str], meta: Mapping[str, StudentMeta], references: Iterable[str] = ()
) -> dict[str, str]:
    """Real id -> why that student's pseudonym is not shown. A pseudonym is shown only if no
    other name the board could show is the same name (see folded): it is nobody's id (its own
    student's included), no reference row's name, looks like no derived id, and no other
    student chose it too. Otherwise two rows could stand under one name, or one student under
    another's."""
    students = set(students)
    chosen = {s: p for s in students if (p := meta.get(s, StudentMeta()).pseudonym)}
    taken = {
        "is a student id": {folded(s) for s in students},
        "is a reference row's name": {folded(r) for r in references},
    }
    counts = Counter(folded(p) for p in chosen.values())
    refused = {}
    for student, pseudonym in sorted(chosen.items()):
        name = folded(pseudonym)
        why = [reason for reason, names in taken.items() if name in names]
        if name.startswith(PREFIX):
            why.append(f"starts with {PREFIX!r}, as derived ids do")
        if counts[name] > 1:
            why.append("was chosen by another student too")
        if why:
            refused[student] = f"'pseudonym' {pseudonym!r} {why[0]}"
    return refused


def refusal_lines(results: Iterable[Result], meta: Mapping[str, StudentMeta]) -> list[str]:
    """Each pseudonym an anonymized board of these rows would not show, in the words that say
    what else in a student.toml was ignored."""
    results = list(results)
    students = {r.student for r in results if not r.reference}
    references = {r.student for r in results if r.reference}
    return [
        f"{student}/student.toml: ignored: {reason}; anonymized boards show a derived id"
        for student, reason in sorted(refusals(students, meta, references).items())
    ]


def anonymize(
    results: Iterable[Result], meta: Mapping[str, StudentMeta], secret: bytes
) -> tuple[list[Result], dict[str, StudentMeta]]:
    """Students' rows under their public names, with real ids scrubbed from their text; the
    metadata re-keyed the same way (the pseudonyms shown are kept). Reference rows keep their
    names."""
    results = list(results)
    references = {r.student for r in results if r.reference}
    names = public_names((r.student for r in results if not r.reference), meta, secret, references)
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
    # A refused pseudonym is not shown, so not kept either; the LMS's user id names the
    # student to anyone with the course roster.
    public_meta = {
        names[s]: replace(
            m, pseudonym=m.pseudonym if m.pseudonym == names[s] else None, lms_user_id=None
        )
        for s, m in meta.items()
        if s in names
    }
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
