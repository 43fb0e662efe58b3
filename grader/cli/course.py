"""Commands around grading: the board from the store, an LMS export collected, what this
machine offers, and the datasets."""

from __future__ import annotations

from pathlib import Path

import click

from grader.cli.options import (
    FORMATS,
    assignments_option,
    cache_dir_option,
    data_dir_option,
    log,
    specs_asked,
    user_errors,
)
from grader.cli.output import print_collected, print_gradebook, print_similar, print_table
from grader.core.results import Policy
from grader.core.spec import DATASETS


@click.command("leaderboard")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder to write into (with --anonymize, OUT/publish); it holds grades.sqlite unless "
    "--store says otherwise.",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The results store to render.  [default: OUT/grades.sqlite]",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    default=("csv",),
    metavar="csv|md|html|json",
    show_default=True,
    help="What to write (repeatable): leaderboard.csv (with leaderboard.png), leaderboard.md, "
    "leaderboard.html (one self-contained page) or leaderboard.json.",
)
@click.option(
    "--policy",
    default=Policy.LATEST.value,
    metavar="best|latest",
    show_default=True,
    help="Which attempt stands for a student: their best graded one, or their latest.",
)
@click.option(
    "--anonymize",
    is_flag=True,
    help="Show pseudonyms (student.toml's, else ids derived with this store's secret) instead "
    "of student ids, everywhere in the files, and write them into OUT/publish, a folder that "
    "holds anonymized files only (the picture is leaderboard-anonymized.png).",
)
@click.option(
    "--public",
    is_flag=True,
    help="For a board everyone may see: leave every message (an exception's text, an audit's "
    "finding) and the flagged rows held for review off it; each summary says how many rows it "
    "does not show. Names stay student ids unless --anonymize is given too.",
)
@assignments_option
def leaderboard_command(
    out: Path,
    store_path: Path | None,
    formats: tuple[str, ...],
    policy: str,
    anonymize: bool,
    public: bool,
    assignments: Path | None,
) -> None:
    """Render the leaderboard from the results store, as csv, md, html or json.

    It never grades or retrains: every file comes from the attempts the store holds.
    """
    from grader import api

    for name in formats:
        if name not in FORMATS:
            raise click.ClickException(f"unknown format {name!r} (known: {', '.join(FORMATS)})")
    if policy not in {p.value for p in Policy}:
        raise click.ClickException(f"unknown policy {policy!r} (known: best, latest)")
    options = api.LeaderboardOptions(
        out=out,
        store=store_path,
        formats=formats,
        policy=Policy(policy),
        anonymize=anonymize,
        public=public,
        specs=specs_asked(assignments),
    )
    with user_errors():
        board, _written = api.leaderboard(options, log)
    print_table(board.frame)


@click.command("sandbox")
@click.option(
    "--require-sandbox",
    is_flag=True,
    envvar="GRADER_REQUIRE_SANDBOX",
    help="Exit 1 unless every layer is on [env: GRADER_REQUIRE_SANDBOX].",
)
@data_dir_option
def sandbox_command(require_sandbox: bool, data_dir: Path) -> None:
    """Show which isolation layers jobs on this machine really get (a probe job proves them),
    and whether MNIST's private hold-out is here."""
    from grader import api

    with user_errors():
        for line in api.machine_report(require_sandbox, data_dir):
            click.echo(line)


@click.command("data")
@click.argument("names", nargs=-1, type=click.Choice(DATASETS))
@data_dir_option
@cache_dir_option
@click.option(
    "--offline",
    is_flag=True,
    help="Never download: fail if a dataset's files are missing; say so if QMNIST's are.",
)
def data_command(names: tuple[str, ...], data_dir: Path, cache_dir: Path, offline: bool) -> None:
    """Download (if needed), verify and cache the datasets NAMES (default: all), and MNIST's
    private hold-out, QMNIST's extra test digits."""
    from grader import api

    with user_errors():
        for line in api.prepare_data(names or DATASETS, data_dir, cache_dir, offline=offline):
            click.echo(line)


@click.command("collect")
@click.argument("export", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--to",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("submissions"),
    show_default=True,
    help="The submissions folder to place them in.",
)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["canvas", "moodle", "folder"]),
    default=None,
    help="The export's layout; default: told from its file names.",
)
@click.option(
    "--assignment",
    default=None,
    help="The assignment every Python file is for; default: the one each file's name names.",
)
@assignments_option
@click.option("--replace", is_flag=True, help="Replace files that differ from the export's.")
def collect_command(
    export: Path,
    to: Path,
    export_format: str | None,
    assignment: str | None,
    assignments: Path | None,
    replace: bool,
) -> None:
    """Place an LMS bulk download (EXPORT: a zip or a folder) as TO/<student>/<assignment>.py.

    Reads Canvas's "Download Submissions" zip, Moodle's "Download all submissions" zip, or a
    folder of <student>/ folders. Weights beside a file go with it; Canvas's late marker is
    recorded in TO/<student>/student.toml. A file that differs from the export's is kept unless
    --replace is given. Exits 0 when the export was read; what could not be placed is listed.
    """
    from grader import api

    with user_errors():
        report = api.collect_export(
            export,
            to,
            specs_asked(assignments),
            log,
            export_format=export_format,
            assignment=assignment,
            replace_files=replace,
        )
    print_collected(report, to)


@click.command("gradebook")
@click.option(
    "--lms",
    type=click.Choice(["canvas", "moodle", "csv"]),
    required=True,
    help="canvas: Canvas's gradebook import CSV; moodle: Moodle's grade import CSV (needs "
    "--roster); csv: one row per student and assignment with the parts of the points.",
)
@click.option("--assignment", default=None, help="The assignment (needed when there are several).")
@click.option(
    "--column",
    default=None,
    help="The roster's column for the assignment, e.g. 'Homework 2 (4455)'. Default: the "
    "roster's one column naming the assignment, else the assignment's name.",
)
@click.option(
    "--roster",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The course's own gradebook export from the LMS: its rows and columns are filled.",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("results") / "grades.sqlite",
    show_default=True,
    help="The results store to read.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to write.  [default: gradebook-<lms>.csv beside the store]",
)
@click.option(
    "--policy-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The grading policy (points, due dates, late penalty, extensions).  [default: "
    "policy.toml beside the assignments folder, e.g. course/policy.toml]",
)
@assignments_option
def gradebook_command(
    lms: str,
    assignment: str | None,
    column: str | None,
    roster: Path | None,
    store_path: Path,
    out: Path | None,
    policy_file: Path | None,
    assignments: Path | None,
) -> None:
    """Write the grades from the results store as a file the LMS imports.

    Points come from the spec's targets and the grading policy; the late penalty is computed
    now, from each student's submitted_at and the due date (or extension) in force, so moving
    a due date changes the next export without regrading.
    """
    from grader import api

    options = api.GradebookOptions(
        lms=lms,
        store=store_path,
        out=out,
        assignment=assignment,
        column=column,
        roster=roster,
        policy=policy_file,
        specs=specs_asked(assignments),
    )
    with user_errors():
        book = api.gradebook(options, log)
    print_gradebook(book)


@click.command("similarity")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="The folder of `grader run` (its grades.sqlite): the graded models are compared there.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for similarity.csv and similarity.html (never publish them: they name "
    "students).  [default: RESULTS]",
)
@assignments_option
@data_dir_option
@cache_dir_option
def similarity_command(
    submissions: Path,
    results: Path,
    out: Path | None,
    assignments: Path | None,
    data_dir: Path,
    cache_dir: Path,
) -> None:
    """Find pairs of submissions to review for copying: code shared beyond the starter, and
    models that make the same mistakes far more often than honest models do.

    A pair is a signal for a person to review, never a penalty; course/reviewed.toml clears a
    reviewed pair.
    """
    from grader import api

    options = api.SimilarityOptions(
        submissions=submissions,
        results=results,
        assignments=specs_asked(assignments),
        data_dir=data_dir,
        cache_dir=cache_dir,
        out=out,
    )
    with user_errors():
        summary = api.similarity(options, log)
    print_similar(summary)
