"""The `grader` command: a thin click layer over grader.api.

Only light modules are imported up front, so `grader --help` starts at once; each command
imports the heavy parts (torch, pandas, scikit-learn) it needs, when it runs.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from grader import __version__
from grader.core.machine import DEVICES, DeviceError
from grader.core.results import Mode, Policy, Result
from grader.core.review import ReviewError
from grader.core.spec import DATASETS, Spec, SpecError, SpecsFound, load_specs, locate_specs
from grader.core.submission import SubmissionsError, assignment_of
from grader.core.text import printable
from grader.data.errors import DataError
from grader.data.fetch import FetchError
from grader.data.registry import default_cache_dir, default_data_dir
from grader.execute.slurm_queue import SlurmError
from grader.publish.errors import PublishError
from grader.sandbox.box import Sandbox, SandboxError
from grader.store.sqlite import StoreError

if TYPE_CHECKING:
    import pandas as pd

    from grader.api import RunSummary
    from grader.data.graded import GradingData
    from grader.execute.slurm import SlurmOptions

USER_ERRORS = (
    SpecError,
    SubmissionsError,
    DataError,
    FetchError,
    StoreError,
    SandboxError,
    DeviceError,
    ReviewError,
    SlurmError,
    PublishError,
)
LOG_LINES = 12
FORMATS = ("csv", "md", "html", "json")  # grader.publish.board.FORMATS, without importing it
QUIET = "grader.quiet"  # in the click context's meta: say nothing but warnings and errors
EXECUTORS = ("local", "slurm")
# Options of `run` that only Slurm uses, by parameter name, as the command line spells them.
SLURM_ONLY = {
    "shared_dir": "--shared-dir",
    "partition": "--partition",
    "account": "--account",
    "gpus_per_task": "--gpus-per-task",
    "array_parallelism": "--slurm-array-parallelism",
    "slurm_options": "--slurm-option",
}
SBATCH_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GRADER_DATA_DIR",
    default=default_data_dir,
    show_default="$GRADER_DATA_DIR or the user data dir",
    help="Folder holding MNIST/raw/, QMNIST/raw/ and UCI_HAR/.",
)
cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GRADER_CACHE_DIR",
    default=default_cache_dir,
    show_default="$GRADER_CACHE_DIR or the user cache dir",
    help="Where parsed datasets are cached as arrays.",
)
assignments_option = click.option(
    "--assignments",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GRADER_ASSIGNMENTS",
    default=None,
    help="Folder of assignment specs (*.toml) [env: GRADER_ASSIGNMENTS]. Default: "
    "course/assignments here or beside the submissions, else the course's own specs.",
)
mode_option = click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.RETRAIN.value,
    show_default=True,
    help="retrain: train with the grader's seed; load: evaluate the submitted weights; "
    "auto: load when weights are present; verify: retrain, and flag submitted weights that "
    "score more than the code reproduces.",
)
device_option = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where jobs train and predict: auto picks CUDA when a GPU is usable.",
)
timeout_option = click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=1),
    default=None,
    help="Wall-clock seconds per phase, overriding the spec's budget.",
)
sandbox_options = [
    click.option(
        "--require-sandbox",
        is_flag=True,
        envvar="GRADER_REQUIRE_SANDBOX",
        help="Fail instead of warning when an isolation layer is unavailable "
        "[env: GRADER_REQUIRE_SANDBOX].",
    ),
    click.option(
        "--no-sandbox",
        is_flag=True,
        help="Run children without isolation: only for trusted code (benchmarks).",
    ),
    click.option(
        "--warm/--no-warm",
        default=True,
        show_default=True,
        help="Fork each job phase from a warm process that imported torch once (every layer "
        "still applies per job); --no-warm starts a fresh process per phase.",
    ),
]


executor_options = [
    click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        default="local",
        show_default=True,
        help="Where submissions are graded: local (worker threads here) or slurm (a job array "
        "on a Slurm cluster, one task per submission; needs --shared-dir).",
    ),
    click.option(
        "--shared-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="slurm: a folder every node sees at the same path; data, specs, staged "
        "submissions and task files go there.",
    ),
    click.option("--partition", default=None, help="slurm: the partition tasks run in."),
    click.option("--account", default=None, help="slurm: the account tasks are charged to."),
    click.option(
        "--gpus-per-task",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="slurm: GPUs per task; with GPUs, jobs train on CUDA.",
    ),
    click.option(
        "--slurm-array-parallelism",
        "array_parallelism",
        type=click.IntRange(min=1),
        default=None,
        help="slurm: at most this many tasks run at once.",
    ),
    click.option(
        "--slurm-option",
        "slurm_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="slurm: another sbatch option, e.g. qos=high (repeatable); time=MINUTES or "
        "mem=SIZE replace the limits taken from the spec's budgets.",
    ),
]


Decorator = Callable[[Callable[..., None]], Callable[..., None]]


def _all_of(options: Sequence[Decorator]) -> Decorator:
    """One decorator applying a group of click options, in the order --help lists them."""

    def apply(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


with_sandbox_options = _all_of(sandbox_options)
with_executor_options = _all_of(executor_options)


@click.group()
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade PyTorch homework: sandboxed, deterministic, with a leaderboard."""


@main.command("run")
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
    seeds_text: str | None,
    verify_determinism: bool,
    quiet: bool,
    as_json: bool,
    require_sandbox: bool,
    no_sandbox: bool,
    warm: bool,
    executor: str,
    shared_dir: Path | None,
    partition: str | None,
    account: str | None,
    gpus_per_task: int,
    array_parallelism: int | None,
    slurm_options: tuple[str, ...],
) -> None:
    """Grade every SUBMISSIONS/<student>/<assignment>.py and write OUT/leaderboard.csv.

    Every row also gets a report, OUT/reports/<student>/<assignment>.html and .md. Submissions
    already graded under the same code, spec, data and grader version are reused from
    OUT/grades.sqlite (except timeouts and crashes, which are graded again). Progress goes to
    stderr: a bar on a terminal, else one line per finished submission. Exits 0 when the batch
    finished, even if some rows failed. With --executor slurm, a run started again after an
    interruption collects the tasks the first one left in Slurm.
    """
    from grader import api
    from grader.publish.progress import RunProgress, summary

    click.get_current_context().meta[QUIET] = quiet
    _refuse_contradiction(require_sandbox, no_sandbox)
    seeds = _seeds(seeds_text)
    slurm = _slurm(
        executor,
        workers,
        shared_dir,
        partition,
        account,
        gpus_per_task,
        array_parallelism,
        slurm_options,
        (not no_sandbox, require_sandbox, warm),
    )
    with user_errors():
        found = _specs(assignments, submissions)
        options = api.RunOptions(
            submissions=submissions,
            out=out,
            assignments=found.folder,
            data_dir=data_dir,
            cache_dir=cache_dir,
            mode=Mode(mode),
            timeout_seconds=timeout_seconds,
            workers=workers,
            force=force,
            verify_determinism=verify_determinism,
            device=device,
            seeds=seeds,
            slurm=slurm,
        )
        progress = None if quiet else RunProgress()
        try:
            with _sandbox(require_sandbox, no_sandbox, warm) as sandbox:
                done = api.run(options, sandbox, _log, progress)
        finally:
            if progress:
                progress.close()
    if as_json:
        click.echo(_run_json(done))
    elif not quiet:
        _print_table(done.board)
    _log(summary(list(done.board["status"]), done.graded, done.reused))
    _log(f"wrote {done.csv_path}; reports in {done.reports}")


@main.command("check")
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
    require_sandbox: bool,
    no_sandbox: bool,
    warm: bool,
) -> None:
    """Grade one FILE exactly as `grader run` would, and say which targets it meets.

    The assignment is --assignment, else the one FILE's name is or names (my_har.py: har).
    Exits 0 when the file was graded, 1 when grading failed (the message says why).
    """
    from grader import api
    from grader.core.files import atomic_copy

    _refuse_contradiction(require_sandbox, no_sandbox)
    with user_errors():
        env = api.environment(device)
        specs = load_specs(_specs(assignments, file.parent).folder)
        name = assignment or assignment_of(file, specs)
        if name not in specs:
            raise click.ClickException(
                f"unknown assignment {name!r} (known: {', '.join(sorted(specs))}); use --assignment"
            )
        spec = specs[name]
        data = api.grading_data(spec, data_dir, cache_dir)
        with (
            _sandbox(require_sandbox, no_sandbox, warm) as sandbox,
            _kept_weights(save_weights) as weights_dir,
        ):
            _log_grading(file, spec, data)
            result = api.check(
                file,
                spec,
                sandbox,
                data,
                mode=Mode(mode),
                timeout_seconds=timeout_seconds,
                weights_dir=weights_dir,
                env=env,
            )
            if save_weights and weights_dir and result.ok:
                atomic_copy(weights_dir / name / f"{result.student}.safetensors", save_weights)
    _print_check(result, spec, save_weights, report_dir)
    if not result.ok:
        sys.exit(1)


@main.command("leaderboard")
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
@assignments_option
def leaderboard_command(
    out: Path,
    store_path: Path | None,
    formats: tuple[str, ...],
    policy: str,
    anonymize: bool,
    assignments: Path | None,
) -> None:
    """Render the leaderboard from the results store, as csv, md, html or json.

    It never grades or retrains: every file comes from the attempts the store holds.
    """
    from grader.publish.board import PUBLISH, BoardOptions, leaderboard
    from grader.store.sqlite import DB_NAME

    for name in formats:
        if name not in FORMATS:
            raise click.ClickException(f"unknown format {name!r} (known: {', '.join(FORMATS)})")
    if policy not in {p.value for p in Policy}:
        raise click.ClickException(f"unknown policy {policy!r} (known: best, latest)")
    path = store_path or out / DB_NAME
    folder = out / PUBLISH if anonymize else out
    with user_errors():
        options = BoardOptions(
            store=path,
            assignments=_specs(assignments, path.parent).folder,
            out=folder,
            formats=tuple(dict.fromkeys(formats)),
            policy=Policy(policy),
            anonymize=anonymize,
        )
        try:
            board, written = leaderboard(options, _log)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write into {folder}: {exc.strerror or exc}"
            ) from None
    _print_table(board.frame)
    _log("wrote " + ", ".join(str(p) for p in dict.fromkeys(written)))


@main.group("gradescope")
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
    from grader.adapters import gradescope

    if wheel and install_line:
        raise click.ClickException("--wheel and --install-line contradict each other")
    with user_errors(), gradescope_errors():
        spec = _known_spec(_specs(assignments, Path.cwd()).folder, assignment)
        names = gradescope.build_zip(spec, output, wheel=wheel, install=install_line)
    _log(f"wrote {output}: {', '.join(names)}")


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
    require_sandbox: bool,
    no_sandbox: bool,
    warm: bool,
) -> None:
    """Grade ROOT/submission/<assignment>.py into ROOT/results/results.json.

    A submission that fails still gets a valid results.json (exit 0); when the grader itself
    cannot grade (missing data, a broken spec), results.json says so and the exit is 1.
    """
    import time

    from grader import api
    from grader.adapters import gradescope

    _refuse_contradiction(require_sandbox, no_sandbox)
    started = time.monotonic()

    def check(file: Path, spec: Spec) -> Result:
        data = api.grading_data(spec, data_dir, cache_dir)
        with _sandbox(require_sandbox, no_sandbox, warm) as sandbox:
            _log_grading(file, spec, data)
            return api.check(
                file, spec, sandbox, data, mode=Mode(mode), timeout_seconds=timeout_seconds
            )

    try:
        with user_errors(), gradescope_errors():
            result = gradescope.run(root, assignment, check)
    except click.ClickException as exc:
        gradescope.write_results(
            root, gradescope.failed_json(exc.message, time.monotonic() - started)
        )
        raise
    _log(
        f"{result.student}/{result.assignment}: {result.status}; wrote {root / gradescope.RESULTS}"
    )


@main.command("sandbox")
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
    from grader.data.registry import holdout_line

    with user_errors(), Sandbox(require=require_sandbox) as sandbox:
        for layer in sandbox.layers:
            click.echo(str(layer))
        rules = sandbox.landlock_rules()
        if rules:
            click.echo("landlock rules of a job (its own folders have other names):")
            for rule in rules:
                click.echo(f"  {rule}")
        click.echo(f"jobs: {sandbox.launch}")
        click.echo(holdout_line(data_dir))


@main.command("data")
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
    from grader.data.registry import prepare, prepare_holdout

    with user_errors():
        for name in names or DATASETS:
            prepared = prepare(name, data_dir, cache_dir, download=not offline)
            click.echo(f"{name}: {prepared.description}, checksum {prepared.checksum[:16]}")
            click.echo(prepare_holdout(name, data_dir, cache_dir, download=not offline))


@main.command("collect")
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
    from grader.adapters.archive import ExportError
    from grader.adapters.collect import Format, Options, collect

    with user_errors():
        specs = load_specs(_specs(assignments, to).folder)
    if assignment is not None and assignment not in specs:
        raise click.ClickException(
            f"unknown assignment {assignment!r} (known: {', '.join(sorted(specs))})"
        )
    try:
        options = Options(
            known=tuple(sorted(specs)),
            assignment=assignment,
            replace=replace,
            max_weights_bytes=max(s.budgets.weights_bytes for s in specs.values()),
        )
        report = collect(export, to, options, Format(export_format) if export_format else None)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    _log(f"{export}: a {report.format} export")
    for placed in report.placed:
        late = "  (late)" if placed.student in report.late else ""
        files = ", ".join(placed.files)
        click.echo(f"{placed.action:<10} {placed.student}/: {files}{late}")
    if report.problems:
        click.echo("not placed:")
        for problem in report.problems:
            click.echo(f"  {printable(problem.path)}: {printable(problem.reason)}")
    counts = {a: sum(p.action == a for p in report.placed) for a in ("new", "replaced")}
    click.echo(
        f"{len(report.placed)} placed in {to} ({counts['new']} new, {counts['replaced']} "
        f"replaced), {len(report.problems)} not placed, {len(set(report.late))} late"
    )


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


def check_main(path: str, assignment: str) -> None:
    """`python my_har.py` runs `grader check` on itself as the named assignment, whatever the
    copy is called, passing on any extra arguments."""
    main(args=["check", path, "--assignment", assignment, *sys.argv[1:]], prog_name="grader")


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except USER_ERRORS as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def gradescope_errors() -> Iterator[None]:
    from grader.adapters.gradescope import GradescopeError

    try:
        yield
    except GradescopeError as exc:
        raise click.ClickException(str(exc)) from None


def _known_spec(folder: Path, name: str) -> Spec:
    specs = load_specs(folder)
    if name not in specs:
        raise click.ClickException(
            f"unknown assignment {name!r} (known: {', '.join(sorted(specs))}); use --assignment"
        )
    return specs[name]


def _specs(assignments: Path | None, near: Path) -> SpecsFound:
    """The specs this command uses, said on the terminal."""
    source = click.get_current_context().get_parameter_source("assignments")
    env = source is ParameterSource.ENVIRONMENT
    how = "from GRADER_ASSIGNMENTS" if env else "from --assignments"
    found = locate_specs(assignments, how, near)
    _log(f"specs: {found}")
    return found


def _slurm(
    executor: str,
    workers: int | None,
    shared_dir: Path | None,
    partition: str | None,
    account: str | None,
    gpus_per_task: int,
    array_parallelism: int | None,
    slurm_options: tuple[str, ...],
    sandbox: tuple[bool, bool, bool],
) -> SlurmOptions | None:
    """The Slurm settings of `run`, or None for a local run; options that do not fit are errors."""
    context = click.get_current_context()
    given = [
        flag
        for name, flag in SLURM_ONLY.items()
        if context.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if executor == "local":
        if given:
            raise click.ClickException(f"{', '.join(given)}: only with --executor slurm")
        return None
    if workers is not None:
        raise click.ClickException(
            "--workers is for --executor local; with slurm, use --slurm-array-parallelism"
        )
    if shared_dir is None:
        raise click.ClickException(
            "--executor slurm needs --shared-dir, a folder every node sees at the same path"
        )
    from grader.execute.slurm import SlurmOptions
    from grader.execute.slurm_task import SandboxFlags

    return SlurmOptions(
        shared_dir=shared_dir.absolute(),
        partition=partition,
        account=account,
        gpus_per_task=gpus_per_task,
        array_parallelism=array_parallelism,
        extra=tuple(_key_value(option) for option in slurm_options),
        sandbox=SandboxFlags(*sandbox),
    )


def _key_value(option: str) -> tuple[str, str]:
    key, equals, value = option.partition("=")
    if not equals or not SBATCH_KEY.match(key) or not value or not value.isprintable():
        raise click.ClickException(
            f"--slurm-option {option!r}: expected KEY=VALUE, such as qos=high"
        )
    return key, value


def _refuse_contradiction(require: bool, disabled: bool) -> None:
    if require and disabled:
        raise click.ClickException("--require-sandbox and --no-sandbox contradict each other")


def _sandbox(require: bool, disabled: bool, warm: bool) -> Sandbox:
    sandbox = Sandbox(enabled=not disabled, require=require, warm=warm)
    for layer in sandbox.layers:
        _log(f"sandbox {layer}")
    _log(f"jobs: {sandbox.launch}")
    warning = sandbox.weak_warning()
    if warning:
        _log("warning: " + warning)
    return sandbox


@contextmanager
def _kept_weights(save_weights: Path | None) -> Iterator[Path | None]:
    if save_weights is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="grader-weights-") as folder:
        yield Path(folder)


def _print_table(board: pd.DataFrame) -> None:
    from grader.publish.table import table_text

    click.echo(table_text(board))


def _print_check(
    result: Result, spec: Spec, save_weights: Path | None, report_dir: Path | None
) -> None:
    from grader.publish.reports import build_report, write_report

    report = build_report(result, spec, pictures=report_dir is not None)
    click.echo(f"{printable(result.student)}/{result.assignment}: {result.status}")
    if not result.ok:
        click.echo(f"  {printable(result.message)}")
        if result.log_tail.strip():
            click.echo("  last lines of its output:")
            for line in result.log_tail.strip().splitlines()[-LOG_LINES:]:
                click.echo(f"    {printable(line)}")
    else:
        assert result.train_accuracy is not None and result.test_accuracy is not None
        click.echo(
            f"  train accuracy {result.train_accuracy:.4f}   test accuracy "
            f"{result.test_accuracy:.4f}   gap {result.gap:+.4f}"
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
        )
        # Pickled weights are never opened by the grader, so it has no count of its own.
        count = "parameters not counted" if result.params is None else f"{result.params} parameters"
        click.echo(f"  {count}, {how}, seed {result.seed}, {result.threads} thread(s)")
    click.echo("diagnosis:")
    for finding in report.findings:  # a failure's evidence quotes the student's message
        click.echo(f"  {finding.title}. {printable(finding.evidence)}")
        for advice in finding.advice:
            click.echo(f"    - {advice}")
    if save_weights and result.ok:
        click.echo(f"  weights saved to {save_weights}")
    if report_dir is not None:
        try:
            written = write_report(report, report_dir)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write the report into {report_dir}: {exc.strerror or exc}"
            ) from None
        click.echo(f"report: {written[-1]} and {written[-2]}")


def _run_json(summary: RunSummary) -> str:
    """The run as JSON for scripts: counts, files, and every row of the board."""
    import json

    from grader.publish.board import rows_json

    return json.dumps(
        {
            "graded": summary.graded,
            "reused": summary.reused,
            "leaderboard": str(summary.csv_path),
            "reports": str(summary.reports),
            "rows": rows_json(summary.board),
        },
        indent=2,
        allow_nan=False,
    )


def _log_grading(file: Path, spec: Spec, data: GradingData) -> None:
    for note in data.notes:
        _log(note)
    _log(f"grading {file} as {spec.name} ({data.data.description}; {data.holdout_said}) ...")


def _log(message: str) -> None:
    """A line for the person at the terminal (stderr); --quiet keeps only warnings."""
    context = click.get_current_context(silent=True)
    quiet = context is not None and context.meta.get(QUIET, False)
    if not quiet or message.startswith("warning"):
        click.echo(message, err=True)


if __name__ == "__main__":
    main()
