"""What the commands print on stdout: tables, a check's findings, a run as JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from grader.core.results import Mode
from grader.core.text import printable

if TYPE_CHECKING:
    import pandas as pd

    from grader.adapters.collect import Report as CollectReport
    from grader.api import Checked, Gradebook, Interrupted, RunSummary, SimilaritySummary

LOG_LINES = 12  # a failed check's last lines of output


def print_table(board: pd.DataFrame) -> None:
    from grader.publish.table import Marks, table_text, terminal_width

    stdout = sys.stdout  # what click.echo writes to (a CliRunner swaps it in tests)
    click.echo(table_text(board, terminal_width(stdout), Marks.for_encoding(stdout.encoding)))


def print_check(checked: Checked, save_weights: Path | None) -> None:
    """What `grader check` found: the row, its targets with their margins, and the diagnosis."""
    result, report = checked.result, checked.report
    click.echo(f"{printable(result.student)}/{result.assignment}: {result.status}")
    if not result.ok:
        _say(printable(result.message), "  ")
        if result.log_tail.strip():
            click.echo("  last lines of its output:")
            for line in result.log_tail.strip().splitlines()[-LOG_LINES:]:
                click.echo(f"    {printable(line)}")
    else:
        assert result.train_accuracy is not None and result.test_accuracy is not None
        several = len(result.graded_seeds) > 1
        if len(result.per_seed) > 1:
            tests = ", ".join(f"{s['test_accuracy']:.4f}" for s in result.per_seed)
            click.echo(f"  {report.seeds}: test accuracy {tests}")
        spread = "" if result.test_accuracy_std is None else f" ± {result.test_accuracy_std:.4f}"
        click.echo(
            f"  {'their mean: ' if several else ''}train accuracy {result.train_accuracy:.4f}   "
            f"test accuracy {result.test_accuracy:.4f}{spread}   gap {result.gap:+.4f}"
        )
        for target in report.targets:
            met = "met" if target.met else "not met"
            margins = ", ".join(
                f"{b.what} margin {b.margin * 100:+.2f} points" for b in target.bounds
            )
            click.echo(f"  target {target.target.name} ({target.target.description}): {met}")
            click.echo(f"    {margins}")
        how = (
            "evaluated the submitted weights"
            if result.mode is Mode.LOAD
            else f"{result.epochs} epochs, trained in {result.train_seconds or 0:.1f} s"
            + (" in all" if several else "")
        )
        # Pickled weights are never opened by the grader, so it has no count of its own.
        count = "parameters not counted" if result.params is None else f"{result.params} parameters"
        click.echo(f"  {count}, {how}, {report.seeds}, {result.threads} thread(s)")
        if report.own_hparams:
            own = printable(report.own_hparams)
            _say(f"your own HPARAMS (passed to your train()): {own}", "  ")
        for warning in result.hparam_warnings:
            _say(f"warning: {printable(warning)}", "  ")
    click.echo("diagnosis:")
    for finding in report.findings:  # a failure's evidence quotes the student's message
        _say(f"{finding.title}. {printable(finding.evidence)}", "  ")
        for advice in finding.advice:
            _say(advice, "    - ", "      ")
        if finding.lesson_link:
            click.echo(f"    lesson: {finding.lesson_link}")
    if save_weights and result.ok:
        click.echo(f"  weights saved to {save_weights}")
    if checked.report_files:
        written = checked.report_files
        click.echo(f"report: {written[-1]} and {written[-2]}")


def _say(text: str, first: str, rest: str | None = None) -> None:
    """A paragraph wrapped at word boundaries to the terminal's width; a log keeps it whole."""
    import textwrap

    from grader.publish.table import terminal_width

    width = terminal_width(sys.stdout)
    if width is None:
        click.echo(first + text)
        return
    indent = first if rest is None else rest
    click.echo(
        textwrap.fill(
            text,
            max(width - 1, 40),
            initial_indent=first,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )
    )


def run_json(summary: RunSummary) -> str:
    """The run as JSON for scripts: counts, files, and every row of the board."""
    import json

    from grader.publish.board import rows_json

    return json.dumps(
        {
            "graded": summary.graded,
            "reused": summary.reused,
            "leaderboard": str(summary.csv_path),
            "reports": str(summary.reports),
            "similarity": [str(p) for p in summary.similarity.files] if summary.similarity else [],
            "rows": rows_json(summary.board),
        },
        indent=2,
        allow_nan=False,
    )


def interrupted_lines(stop: Interrupted) -> list[str]:
    """What a Ctrl-C left: what is saved, that a run again resumes, which board is which."""
    board = (
        f"{stop.board} is unchanged, the last finished run's"
        if stop.board
        else "no finished run has written leaderboard.csv yet"
    )
    return [
        f"interrupted: {stop.saved} of {stop.pending} submissions to grade were graded and saved "
        f"in {stop.store} (and every seed finished of the others)",
        "run the same command again to resume: what was saved is reused, not graded again "
        "(timeouts and crashes are graded again, as in every run)",
        f"partial leaderboard, of what the store holds now: {stop.partial}; {board}",
    ]


def print_collected(report: CollectReport, to: Path) -> None:
    """What `grader collect` placed, what it could not, and the counts."""
    for placed in report.placed:
        late = "  (late)" if placed.student in report.late else ""
        files = ", ".join(placed.files)
        click.echo(f"{placed.action:<10} {placed.student}/: {files}{late}")
        if placed.newest:  # the upload's names are the student's text
            click.echo(f"{'':<10} {placed.assignment}: {printable(placed.newest)}")
    if report.problems:
        click.echo("not placed:")
        for problem in report.problems:
            click.echo(f"  {printable(problem.path)}: {printable(problem.reason)}")
    counts = {a: sum(p.action == a for p in report.placed) for a in ("new", "replaced")}
    click.echo(
        f"{len(report.placed)} placed in {to} ({counts['new']} new, {counts['replaced']} "
        f"replaced), {len(report.problems)} not placed, {len(set(report.late))} late"
        + _newest_count(report)
    )


def print_gradebook(book: Gradebook) -> None:
    """Where the gradebook went, how many of each status and late, and who did not match."""
    written = book.written
    column = f", column {printable(written.column)!r}" if written.column else ""
    click.echo(f"wrote {written.path}{column}")
    if written.roster_only:
        names = ", ".join(printable(n) for n in written.roster_only)
        click.echo(f"in the roster, no submission ({len(written.roster_only)}): {names}")
    if written.unmatched:
        click.echo(
            f"graded but not in the file ({len(written.unmatched)}; no roster row or no LMS "
            f"id to match): {', '.join(written.unmatched)}"
        )
    counts = dict(book.counts)
    late = counts.pop("late", 0)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    click.echo(f"{len(written.points)} rows: {parts or 'none'}; {late} late")


def print_similar(summary: SimilaritySummary) -> None:
    """Each pair to review, one line each, strongest first; then where the files went."""
    for found in summary.findings:
        for pair in found.signals:
            seen = pair.behaviour
            kappa = seen.error_consistency if seen else None
            errors = f"{kappa:.2f}" if kappa is not None else "-"
            click.echo(
                f"{found.assignment}: {printable(pair.a.student)} and {printable(pair.b.student)}"
                f": {pair.verdict} (code {100 * pair.code.similarity:.1f}%, errors {errors})"
            )
    click.echo("wrote " + ", ".join(str(path) for path in summary.files))


def _newest_count(report: CollectReport) -> str:
    several = sum(bool(p.newest) for p in report.placed)
    return f", {several} uploaded several times (the newest taken)" if several else ""
