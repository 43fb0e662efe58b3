"""One assignment's summary: how many students met each target, all or none of them, the median
and best test accuracy, and which seeds those figures are means over.

Every figure is counted from the rows the board's table shows (the same rounded values, the
same target marks), so the summary can never disagree with the table beside it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grader.core.results import Status
from grader.publish.render import percent


@dataclass(frozen=True)
class Summary:
    students: int  # student rows on the board (graded or not)
    graded: int  # ranked: status ok
    unranked: dict[str, int]  # status -> count, in Status order
    held: int  # flagged rows left off a public board
    met: dict[str, int]  # target name -> graded students who met it
    met_all: int | None  # graded students who met every target (None: fewer than two)
    met_none: int
    median: float | None  # of the graded students' test accuracies (each a mean over seeds)
    best: float | None
    seeds: tuple[tuple[int, ...], ...]  # the seed lists the graded rows were graded on

    @property
    def counts(self) -> str:
        """How many students, ranked and not (why not), and how many rows are not shown."""
        line = f"{self.students} student{'s' if self.students != 1 else ''}: {self.graded} ranked"
        if self.unranked:
            why = ", ".join(f"{n} {_status(s)}" for s, n in self.unranked.items())
            line += f"; {sum(self.unranked.values())} not ranked: {why}"
        if self.held:
            line += f"; {self.held} flagged (held for review) not shown on this board"
        return line + "."

    @property
    def facts(self) -> list[tuple[str, str]]:
        """(what, how many) lines: targets met, the median and best test accuracy."""
        if not self.graded:
            return []
        of = f" of {self.graded} ranked"
        names = list(self.met)
        lines = [(f"met target {name}", f"{n}{of}") for name, n in self.met.items()]
        if self.met_all is not None:
            both = "both" if len(names) == 2 else "all of"
            lines.append((f"met {both} {' and '.join(names)}", f"{self.met_all}{of}"))
        if names:
            lines.append(("met neither" if len(names) == 2 else "met none", f"{self.met_none}{of}"))
        if self.median is not None:
            lines.append(("median test accuracy", percent(self.median)))
            lines.append(("best test accuracy", percent(self.best)))
        return lines

    @property
    def seeds_line(self) -> str:
        """Which seeds the ranked rows' figures are means over ("" when no row says)."""
        if len(self.seeds) > 1:
            return (
                "Ranked rows were graded on different seeds (see the seeds column): each row's "
                "accuracies and gap are the means over its own seeds."
            )
        if not self.seeds or not self.seeds[0]:
            return ""
        seeds = self.seeds[0]
        if len(seeds) == 1:
            return f"Each ranked row was graded on seed {seeds[0]}."
        named = ", ".join(map(str, seeds[:-1])) + f" and {seeds[-1]}"
        return (
            f"Each ranked row was graded on seeds {named}: its accuracies and gap are the means "
            "over those seeds, and ± gives the test accuracy's standard deviation over them, in "
            "points."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "students": self.students,
            "graded": self.graded,
            "unranked": self.unranked,
            "held_for_review_not_shown": self.held,
            "met": self.met,
            "met_all": self.met_all,
            "met_none": self.met_none,
            "median_test_accuracy": self.median,
            "best_test_accuracy": self.best,
            "seeds": [list(s) for s in self.seeds],
        }


def summarize(rows: Sequence[Mapping[str, Any]], targets: Iterable[str], held: int = 0) -> Summary:
    """The summary of one assignment's student rows (as the board holds them)."""
    targets = list(targets)
    graded = [r for r in rows if r["status"] == Status.OK]
    marks = [r["targets"] for r in graded]
    accuracies = [float(r["test_accuracy"]) for r in graded if r["test_accuracy"] is not None]
    counts = Counter(str(r["status"]) for r in rows if r["status"] != Status.OK)
    return Summary(
        students=len(rows) + held,
        graded=len(graded),
        unranked={str(s): counts[str(s)] for s in Status if counts[str(s)]},
        held=held,
        met={t: sum(1 for m in marks if m.get(t)) for t in targets},
        met_all=sum(1 for m in marks if all(m.get(t) for t in targets))
        if len(targets) > 1
        else None,
        met_none=sum(1 for m in marks if not any(m.get(t) for t in targets)),
        median=statistics.median(accuracies) if accuracies else None,
        best=max(accuracies, default=None),
        seeds=tuple(sorted({seed_list(r.get("seeds")) for r in graded})),
    )


def seed_list(text: object) -> tuple[int, ...]:
    """The board's "0,1,2" as (0, 1, 2); a row stored before seeds were recorded has none."""
    if not isinstance(text, str) or not text:
        return ()
    return tuple(int(s) for s in text.split(","))


def _status(status: str) -> str:
    return "flagged for review" if status == Status.FLAGGED else status
