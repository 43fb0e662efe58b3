"""Text that came from student code, made safe to print, store and put in a CSV."""

from __future__ import annotations

import re

# C0 and C1 control characters: terminal escapes, bells, backspaces, carriage returns.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, keep_lines: bool = False) -> str:
    """Control characters become "?"; unless keep_lines, whitespace runs become one space; what
    UTF-8 cannot encode is escaped (see escaped)."""
    if not keep_lines:
        text = " ".join(text.split())
    return CONTROL.sub("?", escaped(text))


def escaped(text: str) -> str:
    r"""text that UTF-8 can encode (and so the store can keep): the bytes of a name that is not
    UTF-8, which Python holds as surrogate escapes, become \xNN (caf\xff); any other lone
    surrogate (JSON can spell one) becomes \uNNNN."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(text: str, limit: int) -> str:
    return printable(text)[:limit].rstrip()
