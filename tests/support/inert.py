"""Student text built to be anything but inert, and the checks that it stayed inert: no
character that hides itself or reorders a line, and no link a Markdown viewer would make."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from markdown_it import MarkdownIt

URL = "http://evil.example/x"
# A right-to-left override (the rest of the line reads backwards), a zero-width space (two
# names that look the same), a bare URL and a Markdown link to it.
MESSAGE = f"RuntimeError: \u202egnp.exe\u200b see {URL} or [help]({URL}) \u2066mail a@evil.example"
PSEUDONYM = "\u202eOwl\u200b http://evil.example/x"
# Characters that must never reach an output: bidirectional controls, zero-width and other
# format characters, line and paragraph separators, terminal controls (tab and newline aside).
HIDDEN = {"Cf", "Zl", "Zp"}


def hidden(text: str) -> list[str]:
    """The characters of text that control a terminal or hide themselves, as U+XXXX."""
    return [
        f"U+{ord(c):04X}"
        for c in text
        if unicodedata.category(c) in HIDDEN
        or (unicodedata.category(c) == "Cc" and c not in "\n\t")
    ]


@dataclass(frozen=True)
class Link:
    """One link found, as linkify-it reports it to markdown-it."""

    index: int
    last_index: int
    text: str
    url: str
    schema: str


class Linkify:
    """linkify-it's interface, as much as markdown-it's linkify rules use, finding what
    linkify-it finds in one run of text: a scheme (http:, https:, ftp:, mailto:), //host,
    a domain with a top-level domain (evil.example, www.x.org, har.py), an email.
    (linkify-it-py itself is not installed here.)"""

    LINK = re.compile(
        r"(?:(?:https?|ftp):)?//(?:localhost|[\w-]+(?:\.[\w-]+)+)[^\s<>]*"
        r"|mailto:[^\s<>]+"
        r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}"
        r"|(?:[\w-]+\.)+[^\W\d_]{2,}(?:/[^\s<>]*)?",
        re.IGNORECASE,
    )

    def pretest(self, text: str) -> bool:
        return True

    def test(self, text: str) -> bool:
        return self.LINK.search(text) is not None

    def match(self, text: str) -> list[Link]:
        return [self._link(m) for m in self.LINK.finditer(text)]

    def match_at_start(self, text: str) -> Link | None:
        found = self.LINK.match(text)
        return self._link(found) if found else None

    @staticmethod
    def _link(found: re.Match[str]) -> Link:
        text = found.group(0)
        schema = re.match(r"(?:[a-z]+:)?//|mailto:", text, re.IGNORECASE)
        url = text if schema else ("mailto:" if "@" in text else "http://") + text
        return Link(found.start(), found.end(), text, url, schema.group(0) if schema else "")


def linkified(markdown: str) -> str:
    """Markdown as a viewer that links bare URLs shows it (markdown-it with linkify, tables)."""
    md = MarkdownIt("gfm-like")
    md.linkify = Linkify()
    return md.render(markdown)


def assert_inert(text: str, *, markdown: bool = False) -> None:
    """No hidden character; no link (in Markdown, none once a linkifying viewer renders it)."""
    assert hidden(text) == [], hidden(text)
    shown = linkified(text) if markdown else text
    assert "evil.example" not in " ".join(re.findall(r"<a [^>]*>", shown)), shown
    assert not re.search(r"<a\s[^>]*href", shown), re.findall(r"<a\s[^>]*>", shown)
