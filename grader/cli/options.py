"""The command line's shared options, and the parsing every command does the same way."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from grader.core.errors import UserError
from grader.core.machine import DEVICES
from grader.core.results import Mode
from grader.core.spec import SpecsAsked
from grader.data.registry import default_cache_dir, default_data_dir
from grader.sandbox.box import SandboxOptions

if TYPE_CHECKING:
    from grader.execute.slurm import SlurmOptions

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


def with_sandbox_options(command: Callable[..., None]) -> Callable[..., None]:
    """The three sandbox flags, handed to the command whole as `sandbox`: SandboxOptions."""

    @functools.wraps(command)
    def parsed(*args: Any, require_sandbox: bool, no_sandbox: bool, warm: bool, **kw: Any) -> None:
        with user_errors():
            sandbox = SandboxOptions(enabled=not no_sandbox, require=require_sandbox, warm=warm)
        command(*args, sandbox=sandbox, **kw)

    return _all_of(sandbox_options)(parsed)


@contextmanager
def user_errors() -> Iterator[None]:
    """Whatever the person running the grader can fix, as one line and exit 1."""
    try:
        yield
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


def specs_asked(assignments: Path | None) -> SpecsAsked:
    """The specs folder named by --assignments or GRADER_ASSIGNMENTS, and which named it."""
    source = click.get_current_context().get_parameter_source("assignments")
    env = source is ParameterSource.ENVIRONMENT
    return SpecsAsked(assignments, "from GRADER_ASSIGNMENTS" if env else "from --assignments")


def log(message: str) -> None:
    """A line for the person at the terminal (stderr); --quiet keeps only warnings."""
    context = click.get_current_context(silent=True)
    quiet = context is not None and context.meta.get(QUIET, False)
    if not quiet or message.startswith("warning"):
        click.echo(message, err=True)


def with_executor_options(command: Callable[..., None]) -> Callable[..., None]:
    """Where `run` grades, handed to the command as `slurm`: SlurmOptions, or None for a local
    run. Applied below with_sandbox_options, whose SandboxOptions the Slurm nodes get too."""

    @functools.wraps(command)
    def parsed(*args: Any, executor: str, **kw: Any) -> None:
        flags = _SlurmFlags(**{name: kw.pop(name) for name in SLURM_ONLY})
        command(*args, slurm=_slurm(executor, flags, kw["workers"], kw["sandbox"]), **kw)

    return _all_of(executor_options)(parsed)


@dataclass(frozen=True)
class _SlurmFlags:
    """`run`'s Slurm flags as given."""

    shared_dir: Path | None
    partition: str | None
    account: str | None
    gpus_per_task: int
    array_parallelism: int | None
    slurm_options: tuple[str, ...]


def _slurm(
    executor: str, flags: _SlurmFlags, workers: int | None, sandbox: SandboxOptions
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
    if flags.shared_dir is None:
        raise click.ClickException(
            "--executor slurm needs --shared-dir, a folder every node sees at the same path"
        )
    from grader.execute.slurm import SlurmOptions

    return SlurmOptions(
        shared_dir=flags.shared_dir.absolute(),
        partition=flags.partition,
        account=flags.account,
        gpus_per_task=flags.gpus_per_task,
        array_parallelism=flags.array_parallelism,
        extra=tuple(_key_value(option) for option in flags.slurm_options),
        sandbox=sandbox,
    )


def _key_value(option: str) -> tuple[str, str]:
    key, equals, value = option.partition("=")
    if not equals or not SBATCH_KEY.match(key) or not value or not value.isprintable():
        raise click.ClickException(
            f"--slurm-option {option!r}: expected KEY=VALUE, such as qos=high"
        )
    return key, value
