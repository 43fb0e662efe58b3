"""Commands that grade: `grader run` a batch, `grader check` one file, and Gradescope's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from grader.cli.options import (
    QUIET,
    assignments_option,
    cache_dir_option,
    data_dir_option,
    device_option,
    log,
    mode_option,
    specs_asked,
    timeout_option,
    user_errors,
    with_executor_options,
    with_sandbox_options,
)
from grader.cli.output import interrupted_lines, print_check, print_table, run_json
from grader.core.results import Mode
from grader.sandbox.box import SandboxOptions

if TYPE_CHECKING:
    from grader.execute.slurm import SlurmOptions

REASON_CHARS = 200  # --reason: a line such as "regrade request #12, wrong data split"


@click.command("run")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder for leaderboard.csv, grades.sqlite and weights.",
)
@assignments_option
@data_dir_option
@cache_dir_option
@mode_option
@timeout_option
@device_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    show_default="one per GPU with CUDA, else the CPU count (at most 4)",
    help="Submissions graded at once.",
)
@click.option("--force", is_flag=True, help="Regrade even submissions already in the store.")
@click.option(
    "--only",
    "only_text",
    default=None,
    metavar="alice,bob",
    help="Regrade just these students (even if unchanged); every other row, report and "
    "weights file is left as it is.",
)
@click.option(
    "--reason",
    default="",
    metavar="TEXT",
    help="Why this run was started (e.g. 'regrade request #12'), kept in the store with it.",
)
@click.option(
    "--seeds",
    "seeds_text",
    default=None,
    metavar="0,1,2",
    help="Grade on these seeds, overriding each spec's [grading] seeds.",
)
@click.option(
    "--verify-determinism",
    is_flag=True,
    help="Train twice and flag submissions whose weights differ.",
)
@click.option(
    "--no-similarity",
    is_flag=True,
    help="Skip copy detection at the end (`grader similarity` runs it alone).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but warnings and errors.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a machine-readable summary on stdout instead of the table.",
)
@with_sandbox_options
@with_executor_options
def run_command(
    submissions: Path,
    out: Path,
    assignments: Path | None,
    data_dir: Path,
    cache_dir: Path,
    mode: str,
    timeout_seconds: float | None,
    device: str,
    workers: int | None,
    force: bool,
    only_text: str | None,
    reason: str,
    seeds_text: str | None,
    verify_determinism: bool,
    no_similarity: bool,
    quiet: bool,
    as_json: bool,
    sandbox: SandboxOptions,
    slurm: SlurmOptions | None,
) -> None:
    """Grade every SUBMISSIONS/<student>/<assignment>.py and write OUT/leaderboard.csv.

    Every row also gets a report, OUT/reports/<student>/<assignment>.html and .md. Submissions
    already graded under the same code, spec, data and grader version are reused from
    OUT/grades.sqlite (except timeouts and crashes, which are graded again). Progress goes to
    stderr: a bar on a terminal, else one line per finished submission. Exits 0 when the batch
    finished, even if some rows failed. Ctrl-C keeps what was graded (the same command again
    resumes), writes the board so far as OUT/partial/leaderboard.csv and exits 130. --only
    regrades just the students it names, as a regrade request asks, and --reason says why. With
    --executor slurm, a run started again after an interruption collects the tasks the first
    one left in Slurm. At the end every pair of students is compared for copying (see `grader
    similarity`): OUT/similarity.csv and .html, for the instructor only.
    """
    from grader import api
    from grader.publish.progress import RunProgress, summary

    click.get_current_context().meta[QUIET] = quiet
    options = api.RunOptions(
        submissions=submissions,
        out=out,
        assignments=specs_asked(assignments),
        data_dir=data_dir,
        cache_dir=cache_dir,
        mode=Mode(mode),
        timeout_seconds=timeout_seconds,
        workers=workers,
        force=force,
        verify_determinism=verify_determinism,
        device=device,
        seeds=_seeds(seeds_text),
        slurm=slurm,
        request=api.RunRequest(_only(only_text), _reason(reason)),
        similarity=not no_similarity,
    )
    progress = None if quiet else RunProgress()
    try:
        with user_errors():
            done = api.run_batch(options, sandbox, log, progress)
    except api.Interrupted as stop:
        if progress:
            progress.close()  # the bar ends before the lines that say what was kept
        for line in interrupted_lines(stop):
            click.echo(line, err=True)  # even with --quiet: the run did not finish
        raise SystemExit(130) from None  # 128 + SIGINT, as a shell reports Ctrl-C
    finally:
        if progress:
            progress.close()
    if as_json:
        click.echo(run_json(done))
    elif not quiet:
        print_table(done.board)
    log(summary(list(done.board["status"]), done.graded, done.reused))
    similar = f"; pairs to review in {done.similarity.files[-1]}" if done.similarity else ""
    log(f"wrote {done.csv_path}; reports in {done.reports}{similar}")


@click.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--assignment", default=None, help="Assignment name; default: the one the file's name names."
)
@assignments_option
@data_dir_option
@cache_dir_option
@mode_option
@timeout_option
@device_option
@click.option(
    "--save-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save the graded weights here (safetensors), ready to submit.",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the report, as `grader run` does: DIR/<assignment>.html and .md.",
)
@with_sandbox_options
def check_command(
    file: Path,
    assignment: str | None,
    assignments: Path | None,
    data_dir: Path,
    cache_dir: Path,
    mode: str,
    timeout_seconds: float | None,
    device: str,
    save_weights: Path | None,
    report_dir: Path | None,
    sandbox: SandboxOptions,
) -> None:
    """Grade one FILE exactly as `grader run` would, and say which targets it meets.

    The assignment is --assignment, else the one FILE's name is or names (my_har.py: har).
    Exits 0 when the file was graded, 1 when grading failed (the message says why).
    """
    from grader import api

    options = api.CheckOptions(
        file=file,
        data_dir=data_dir,
        cache_dir=cache_dir,
        assignment=assignment,
        specs=specs_asked(assignments),
        settings=api.Settings(Mode(mode), timeout_seconds),
        device=device,
        sandbox=sandbox,
        save_weights=save_weights,
        report_dir=report_dir,
    )
    with user_errors():
        checked = api.check_file(options, log)
    print_check(checked, save_weights)
    if not checked.result.ok:
        raise SystemExit(1)


@click.group("gradescope")
def gradescope_group() -> None:
    """Package the grader as a Gradescope autograder, and grade inside one."""


@gradescope_group.command("build")
@click.option("--assignment", required=True, help="The assignment the autograder grades.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("autograder.zip"),
    show_default=True,
    help="The zip to upload to Gradescope.",
)
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Ship this course-grader wheel.  [default: build one from this checkout]",
)
@click.option(
    "--install-line",
    default=None,
    help="pip arguments that install course-grader instead of a wheel "
    "(e.g. 'course-grader==0.2.0').",
)
@assignments_option
def gradescope_build_command(
    assignment: str,
    output: Path,
    wheel: Path | None,
    install_line: str | None,
    assignments: Path | None,
) -> None:
    """Write the autograder zip: setup.sh, run_autograder, the spec and the grader's wheel."""
    from grader import api

    with user_errors():
        api.gradescope_build(
            assignment,
            output,
            specs_asked(assignments),
            log,
            wheel=wheel,
            install_line=install_line,
        )


@gradescope_group.command("run")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/autograder"),
    show_default=True,
    help="Gradescope's folder: ROOT/submission in, ROOT/results/results.json out.",
)
@click.option(
    "--assignment",
    default=None,
    help="Assignment name; default: the spec in ROOT/source, else the submitted file's name.",
)
@data_dir_option
@cache_dir_option
@mode_option
@timeout_option
@with_sandbox_options
def gradescope_run_command(
    root: Path,
    assignment: str | None,
    data_dir: Path,
    cache_dir: Path,
    mode: str,
    timeout_seconds: float | None,
    sandbox: SandboxOptions,
) -> None:
    """Grade ROOT/submission/<assignment>.py into ROOT/results/results.json.

    A submission that fails still gets a valid results.json (exit 0); when the grader itself
    cannot grade (missing data, a broken spec), results.json says so and the exit is 1.
    """
    from grader import api

    options = api.GradescopeOptions(
        root=root,
        data_dir=data_dir,
        cache_dir=cache_dir,
        assignment=assignment,
        settings=api.Settings(Mode(mode), timeout_seconds),
        sandbox=sandbox,
    )
    with user_errors():
        api.gradescope_run(options, log)


def _seeds(text: str | None) -> tuple[int, ...]:
    if text is None:
        return ()
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise click.ClickException(f"--seeds {text!r}: expected seeds 0 or more, as in 0,1,2")
    seeds = tuple(int(part) for part in parts)
    if len(set(seeds)) != len(seeds):
        raise click.ClickException(f"--seeds {text!r}: a seed is named twice")
    return seeds


def _only(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise click.ClickException(f"--only {text!r}: expected student ids, as in alice,bob")
    if len(set(names)) != len(names):
        raise click.ClickException(f"--only {text!r}: a student is named twice")
    return names


def _reason(text: str) -> str:
    if len(text) > REASON_CHARS or not text.isprintable():
        raise click.ClickException(
            f"--reason: expected one line of at most {REASON_CHARS} printable characters"
        )
    return text
