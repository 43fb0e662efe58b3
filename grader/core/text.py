"""Text that came from student code, made safe to print, store and put in a CSV."""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 control characters: terminal escapes, bells, backspaces, carriage returns.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters that change how the text around them reads without showing themselves: format
# characters (Cf: bidirectional overrides and isolates such as U+202E, the marks U+200E/F and
# U+061C, zero-width spaces and joiners, U+2060, U+FEFF, soft hyphens, tag characters) and the
# line and paragraph separators (Zl, Zp) that end a line where no one sees a line break.
HIDDEN = frozenset({"Cf", "Zl", "Zp"})


def printable(text: str, *, keep_lines: bool = False) -> str:
    """Control and invisible characters become "?" (see visible); unless keep_lines,
    whitespace runs become one space; what UTF-8 cannot encode is escaped (see escaped)."""
    if not keep_lines:
        text = " ".join(text.split())
    return visible(escaped(text))


def visible(text: str) -> str:
    """Every character that controls a terminal or hides itself (a right-to-left override that
    reverses the rest of a line, a zero-width space inside a name) becomes a visible "?"; tabs
    and line breaks stay. Replaced rather than dropped: "ann" and "ann" + U+200B stay two
    names, and a cell that started with an override cannot start with "=" once it is gone."""
    text = CONTROL.sub("?", text)
    if text.isascii():
        return text
    return "".join("?" if unicodedata.category(c) in HIDDEN else c for c in text)


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


def folded(text: str) -> str:
    """The form in which two names are the same name: case folded after NFKC, so "ANN", "ann"
    and "ann" in fullwidth letters (U+FF41 U+FF4E U+FF4E) are one."""
    return unicodedata.normalize("NFKC", text).casefold()
