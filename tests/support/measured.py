"""The course's quoted figures and where they come from: course/lessons/experiments/measured.json
(written by bench/measure_course.py) and the markers that tie a page's figures to it.

A marker follows the figures it vouches for:

    | 5 | 95.81 ± 0.56 | not met | <!-- measured: har_starter_e5 test_mean% test_std% A -->

It names an experiment and one field per figure; the figures are the last numbers (or `met` /
`not met`) written between the previous marker of the paragraph (or its start) and this one,
in the fields' order. Adjacent markers (nothing but white space between them) share the figures
before the first, in their fields' order: one marker per experiment of a table row. A field is

    name            the row the grader shows: train_mean, test_mean, gap_mean, test_std,
                    or a target's name (A, B), quoted as `met` / `not met`
    name@SEED       one seed's figure: train, test, gap, epochs, best_epoch, train_seconds, params,
                    agreement, perturbed_drop
    name@SEED:eN    one seed's epoch N in the per-epoch record: loss, accuracy, val_accuracy, lr
    name_min, name_max, name_mean    a seed figure's extremes or mean over the seeds

and ends in `%` when the page writes it in percent (or points): the measured value times 100.
A figure agrees when it is the measured value rounded to the decimals the page wrote.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.paths import REPO

MEASURED = REPO / "course" / "lessons" / "experiments" / "measured.json"
PAGES = sorted(
    [*(REPO / "course" / "lessons").glob("*.md"), *(REPO / "course" / "handouts").glob("*.md")]
)
# A marker quoted in inline code (`<!-- measured: ... -->`) is an example, not a marker.
MARKER = re.compile(r"(?<!`)<!--\s*measured:\s*(?P<experiment>\S+)(?P<fields>[^>]*?)\s*-->")
MINUS = "\u2212"  # as typeset; "-" as typed
# A figure: a target's verdict, or a number (thousands grouped by commas).
FIGURE = re.compile(
    rf"\bnot met\b|\bmet\b|(?<![\w.])[-{MINUS}]?(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?(?!\w)"
)
FIELD = re.compile(r"(?P<name>[a-zA-Z_]+)(?:@(?P<seed>\d+)(?::e(?P<epoch>\d+))?)?(?P<percent>%?)$")
ROW_FIELDS = ("train_mean", "test_mean", "gap_mean", "test_std")
SEED_FIELDS = (
    *("train", "test", "gap", "epochs", "best_epoch", "train_seconds", "params"),
    *("agreement", "perturbed_drop"),  # the integrity audit's figures
)
EPOCH_FIELDS = ("loss", "accuracy", "val_accuracy", "lr")


@dataclass(frozen=True)
class Quote:
    """One figure a page quotes and the measurement it names."""

    where: str  # page:line
    experiment: str
    field: str
    quoted: str | None  # None: the page has fewer figures before the marker than it names


def load(path: Path = MEASURED) -> dict[str, dict[str, Any]]:
    experiments: dict[str, dict[str, Any]] = json.loads(path.read_text())["experiments"]
    return experiments


def quotes(page: Path) -> list[Quote]:
    """Every figure a marker on the page vouches for."""
    name = page.relative_to(REPO).as_posix() if page.is_relative_to(REPO) else page.name
    text = page.read_text()
    found: list[Quote] = []
    for start, group in _groups(text):
        fields = [(marker["experiment"], f) for marker in group for f in marker["fields"].split()]
        paragraph = text.rfind("\n\n", 0, group[0].start()) + 1  # 0 at the page's start
        figures = FIGURE.findall(text[max(start, paragraph) : group[0].start()])
        mine = figures[len(figures) - len(fields) :] if len(figures) >= len(fields) else []
        where = f"{name}:{text.count(chr(10), 0, group[0].start()) + 1}"
        for index, (experiment, field) in enumerate(fields):
            found.append(Quote(where, experiment, field, mine[index] if mine else None))
    return found


def _groups(text: str) -> list[tuple[int, list[re.Match[str]]]]:
    """Runs of adjacent markers, each with where the text it follows starts (the end of the
    previous run)."""
    groups: list[tuple[int, list[re.Match[str]]]] = []
    end = 0
    for marker in MARKER.finditer(text):
        if groups and not text[end : marker.start()].strip():
            groups[-1][1].append(marker)
        else:
            groups.append((end, [marker]))
        end = marker.end()
    return groups


def disagreement(quote: Quote, experiments: dict[str, dict[str, Any]]) -> str | None:
    """Why the quote does not agree with the measurement, or None when it does."""
    said = f"{quote.where}: {quote.experiment} {quote.field}"
    entry = experiments.get(quote.experiment)
    if entry is None:
        return f"{said}: no such experiment in measured.json"
    if quote.quoted is None:
        return f"{said}: fewer figures before the marker than fields in it"
    try:
        value = measured_value(entry, quote.field)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        return f"{said}: not a measured field ({exc})"
    expected = rendered(value, quote.quoted)
    if expected != normalised(quote.quoted):
        return f"{said}: the page says {quote.quoted}, measured.json says {expected}"
    return None


def measured_value(entry: dict[str, Any], field: str) -> float | bool:
    match = FIELD.match(field)
    if match is None:
        raise ValueError(f"cannot read {field!r}")
    scale = 100 if match["percent"] else 1
    name, seed, epoch = match["name"], match["seed"], match["epoch"]
    if name in entry.get("targets", {}):
        return bool(entry["targets"][name])
    if seed is None:
        return scale * _row_value(entry, name)
    record = _seed(entry, int(seed))
    if epoch is None:
        if name not in SEED_FIELDS:
            raise ValueError(f"{name!r} is not a seed's figure")
        return scale * float(record[name])
    if name not in EPOCH_FIELDS:
        raise ValueError(f"{name!r} is not in the per-epoch record")
    (kept,) = [r for r in record["history"] if r["epoch"] == int(epoch)]
    return scale * float(kept[name])


def _row_value(entry: dict[str, Any], name: str) -> float:
    if name in ROW_FIELDS:
        return float(entry[name])
    base, _, summary = name.rpartition("_")
    if base not in SEED_FIELDS or summary not in ("min", "max", "mean"):
        raise ValueError(f"{name!r} is not a measured field")
    values = [float(record[base]) for record in entry["per_seed"]]
    if summary == "mean":
        return statistics.fmean(values)
    return min(values) if summary == "min" else max(values)


def _seed(entry: dict[str, Any], seed: int) -> dict[str, Any]:
    (record,) = [r for r in entry["per_seed"] if r["seed"] == seed]
    return dict(record)


def rendered(value: float | bool, like: str) -> str:
    """The measured value written as the page wrote its figure: a verdict, or a number with as
    many decimals."""
    if isinstance(value, bool):
        return "met" if value else "not met"
    decimals = len(like.partition(".")[2])
    text = f"{value:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and not text.strip("-0.") else text


def normalised(quoted: str) -> str:
    return quoted.replace(",", "").replace(MINUS, "-")
