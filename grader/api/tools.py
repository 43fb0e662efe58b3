"""The command line's other use cases: the board from the store, an LMS export collected, what this
machine offers, the datasets prepared."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.api.common import Log, find_specs
from grader.core.results import Policy
from grader.core.spec import SpecsAsked, load_specs, pick_spec
from grader.data.registry import holdout_line, prepare, prepare_holdout
from grader.publish.board import PUBLISH, Board, BoardOptions
from grader.publish.board import leaderboard as render_board
from grader.publish.errors import PublishError
from grader.sandbox.box import Sandbox
from grader.store.sqlite import DB_NAME

if TYPE_CHECKING:  # the collector is imported only when an export is collected
    from grader.adapters.collect import Report as CollectReport


@dataclass(frozen=True)
class LeaderboardOptions:
    out: Path
    store: Path | None = None  # default: OUT/grades.sqlite
    formats: tuple[str, ...] = ("csv",)
    policy: Policy = Policy.LATEST
    anonymize: bool = False  # then into OUT/publish, a folder of anonymized files only
    public: bool = False  # leave students' messages and flagged rows off (see build_board)
    specs: SpecsAsked = field(default_factory=SpecsAsked)


def leaderboard(options: LeaderboardOptions, log: Log) -> tuple[Board, list[Path]]:
    """`grader leaderboard`: the board rendered from the store (never grading)."""
    path = options.store or options.out / DB_NAME
    folder = options.out / PUBLISH if options.anonymize else options.out
    board_options = BoardOptions(
        store=path,
        assignments=find_specs(options.specs, path.parent, log),
        out=folder,
        formats=tuple(dict.fromkeys(options.formats)),
        policy=options.policy,
        anonymize=options.anonymize,
        public=options.public,
    )
    try:
        board, written = render_board(board_options, log)
    except OSError as exc:
        raise PublishError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    log("wrote " + ", ".join(str(p) for p in dict.fromkeys(written)))
    return board, written


def collect_export(
    export: Path,
    to: Path,
    asked: SpecsAsked,
    log: Log,
    *,
    export_format: str | None = None,
    assignment: str | None = None,
    replace_files: bool = False,
) -> CollectReport:
    """`grader collect`: an LMS bulk download placed as TO/<student>/<assignment>.py."""
    from grader.adapters.collect import Format, Options, collect

    specs = load_specs(find_specs(asked, to, log))
    if assignment is not None:
        pick_spec(specs, assignment, hint="")
    options = Options(
        known=tuple(sorted(specs)),
        assignment=assignment,
        replace=replace_files,
        max_weights_bytes=max(s.budgets.weights_bytes for s in specs.values()),
    )
    report = collect(export, to, options, Format(export_format) if export_format else None)
    log(f"{export}: a {report.format} export")
    return report


def machine_report(require: bool, data_dir: Path) -> list[str]:
    """`grader sandbox`: the layers jobs here really get, proven by a probe job, each job's
    Landlock rules, how jobs start, and whether MNIST's hold-out is here."""
    with Sandbox(require=require) as sandbox:
        lines = [str(layer) for layer in sandbox.layers]
        rules = sandbox.landlock_rules()
        if rules:
            lines.append("landlock rules of a job (its own folders have other names):")
            lines += [f"  {rule}" for rule in rules]
        lines.append(f"jobs: {sandbox.launch}")
    return [*lines, holdout_line(data_dir)]


def prepare_data(
    names: tuple[str, ...], data_dir: Path, cache_dir: Path, *, offline: bool = False
) -> Iterator[str]:
    """`grader data`: each dataset downloaded if needed, checked and cached, and MNIST's
    hold-out; a line for each as it is ready."""
    for name in names:
        prepared = prepare(name, data_dir, cache_dir, download=not offline)
        yield f"{name}: {prepared.description}, checksum {prepared.checksum[:16]}"
        yield prepare_holdout(name, data_dir, cache_dir, download=not offline)
