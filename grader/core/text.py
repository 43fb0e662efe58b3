"""Text that came from student code, made safe to print, store and put in a CSV."""

from __future__ import annotations

import re

# C0 and C1 control characters: terminal escapes, bells, backspaces, carriage returns.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, keep_lines: bool = False) -> str:
    """Control characters become "?"; unless keep_lines, whitespace runs become one space."""
    if not keep_lines:
        text = " ".join(text.split())
    return CONTROL.sub("?", text)


def one_line(text: str, limit: int) -> str:
    return printable(text)[:limit].rstrip()
