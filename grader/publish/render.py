"""What every renderer shares: how numbers read, student text made inert in Markdown, and the
Jinja environments (HTML escapes by default; Markdown escapes every value by default).

Markdown has no autoescape of its own, so the Markdown environment finalizes every `{{ }}`
value through `md_text` unless a filter marked it as already Markdown (`MdSafe`): student text
can then never open a link, an image, a heading, raw HTML or a new table cell, and no viewer
that links bare URLs (GitHub, markdown-it's linkify) finds one in it. In both environments
control and invisible characters (a right-to-left override, a zero-width space) show as "?".
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import jinja2
import markupsafe

from grader.core.text import printable, visible

DASH = "\N{EN DASH}"  # a value that does not exist (a failed row's accuracy)
# Markdown punctuation that could start markup anywhere in a line; backslash-escaped.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~$])")
# What viewers turn into links with no markup at all (GitHub's autolinks, markdown-it's
# linkify): a scheme (`http:`, `mailto:`), `www.`, a domain (`evil.example`), an email
# (`a@b.example`), `//host`. A backslash before the punctuation they key on (a colon after a
# letter, a dot before a letter, `@`, a second `/`) splits the text they scan, and CommonMark
# shows the escaped character as it is: `http\:/\/evil\.example` reads as the URL, links nowhere.
_MD_LINKISH = re.compile(r"((?<=[A-Za-z]):(?=\S)|\.(?=[^\W\d_])|@|(?<=/)/)")


class MdSafe(str):
    """Text that is already Markdown (made by a filter here), passed through unescaped."""


def md_text(value: Any) -> str:
    """Any value as inert one-line Markdown text."""
    if isinstance(value, MdSafe):
        return value
    text = visible(re.sub(r"\s+", " ", "" if value is None else str(value)))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_LINKISH.sub(r"\\\1", _MD_SPECIAL.sub(r"\\\1", text))


def md_code(text: str, language: str = "text") -> MdSafe:
    """A fenced block: longer than any backtick run inside, so nothing inside can close it."""
    text = printable(text, keep_lines=True).strip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return MdSafe(f"{fence}{language}\n{text}\n{fence}")


def percent(value: Any, digits: int = 2) -> str:
    if not _finite(value):
        return DASH
    return f"{float(value) * 100:.{digits}f}%"


def points(value: Any, digits: int = 2) -> str:
    """A fraction as signed percentage points (a gap, a margin)."""
    if not _finite(value):
        return DASH
    return f"{float(value) * 100:+.{digits}f} points"


def signed(value: Any, digits: int = 2) -> str:
    """A fraction as signed percentage points, the unit left to a column header."""
    return f"{float(value) * 100:+.{digits}f}" if _finite(value) else DASH


def magnitude(value: Any, digits: int = 2) -> str:
    """A fraction as unsigned percentage points (a bound on the gap)."""
    return f"{float(value) * 100:.{digits}f} points" if _finite(value) else DASH


def count(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return DASH


def seconds(value: Any) -> str:
    return f"{float(value):.1f} s" if _finite(value) else DASH


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def csp_hash(text: str) -> str:
    """The Content-Security-Policy source that allows exactly this inline script or style."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


FILTERS = {
    "percent": percent,
    "points": points,
    "signed": signed,
    "magnitude": magnitude,
    "count": count,
    "seconds": seconds,
}


def html_text(value: Any) -> Any:
    """Before HTML escaping: control and invisible characters (terminal escapes, NULs,
    bidirectional overrides, zero-width spaces) become "?"; line breaks stay for log tails in
    <pre>. Markup made by the templates passes untouched."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return visible(value)
    return value


@cache
def html_env() -> jinja2.Environment:
    env = _environment(autoescape=True, finalize=html_text)
    env.filters.update(FILTERS, data_uri=png_data_uri)
    return env


@cache
def md_env() -> jinja2.Environment:
    env = _environment(autoescape=False, finalize=md_text)
    env.filters.update(FILTERS, code=md_code)
    return env


def _environment(autoescape: bool, finalize: Callable[[Any], Any]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("grader.publish", "templates"),
        autoescape=autoescape,
        finalize=finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
