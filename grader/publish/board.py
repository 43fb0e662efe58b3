"""The leaderboard: one Board built from stored results, and its renderers' files.

Like otter-grader's results object, the Board is built once (ranked, with the policy applied
and, on request, anonymized) and every format reads it: the CSV and picture a run writes, and
the Markdown, HTML and JSON an instructor publishes. Nothing here retrains or reads student
files; it renders what the store holds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from grader.core.files import atomic_path
from grader.core.results import STUDENT, Policy, Result, Status
from grader.core.spec import Spec, Target, load_specs
from grader.core.submission import StudentMeta
from grader.core.text import visible
from grader.publish.anonymize import anonymize, refusal_lines
from grader.publish.errors import PublishError
from grader.publish.export import write_csv
from grader.publish.plot import assignment_png, histogram_png, plot_leaderboard
from grader.publish.ranking import board_targets, ranked, similar_to, target_column, target_names
from grader.publish.render import MdSafe, csp_hash, html_env, md_env
from grader.publish.summary import Summary, seed_list, summarize
from grader.store.sqlite import Store, StoreError

CSV_NAME = "leaderboard.csv"
PLOT_NAME = "leaderboard.png"
# An anonymized board's picture has a name of its own, so no run, which draws PLOT_NAME with
# real ids, can ever replace the picture an anonymized page embeds.
ANONYMIZED_PLOT_NAME = "leaderboard-anonymized.png"
SCORED = (Status.OK, Status.FLAGGED)  # rows the audit measured
PUBLISH = "publish"  # OUT/publish: the anonymized board's files, and nothing else
FORMATS = {
    "csv": CSV_NAME,
    "md": "leaderboard.md",
    "html": "leaderboard.html",
    "json": "leaderboard.json",
}
JSON_COLUMNS = [
    "rank", "student", "kind", "status", "test_accuracy", "train_accuracy", "gap", "params",
    "epochs", "train_seconds", "mode", "seed", "late", "message", "finished_at", "agreement",
    "perturbed_drop", "holdout_accuracy", "holdout", "test_accuracy_std", "seeds",
]  # fmt: skip
TIME_NOTE = (
    "the training time summed over the row's seeds, as the grading machine measured it under "
    "whatever else it was running: the grader's record, not the submission's merit (no rank "
    "or target depends on it)"
)
# What a reader of the JSON board needs to know about its columns (the page says the same).
JSON_NOTES = {
    "test_accuracy": "the mean over the row's seeds, as are train_accuracy and gap",
    "test_accuracy_std": "the sample standard deviation of the test accuracy over the seeds",
    "train_seconds": TIME_NOTE,
}


@dataclass(frozen=True)
class BoardOptions:
    """What `grader leaderboard` renders, from which store, and where to."""

    store: Path
    assignments: Path  # the folder of specs
    out: Path  # the folder the files go into; anonymized, a publish folder (see publish_board)
    formats: tuple[str, ...] = ("csv",)
    policy: Policy = Policy.LATEST
    anonymize: bool = False
    public: bool = False  # leave students' messages and flagged rows off (see build_board)


@dataclass(frozen=True)
class Section:
    """One assignment's part of the board."""

    name: str
    title: str
    targets: tuple[Target, ...]
    rows: list[dict[str, Any]]  # students: ranked, then failed
    references: list[dict[str, Any]]  # other kinds (baselines), unranked
    summary: Summary
    picture: bytes = b""  # accuracy against gap (PNG), for the HTML page
    histogram: bytes = b""  # the test accuracies' spread (PNG), for the HTML page

    @property
    def holdout_note(self) -> str:
        """Which private hold-out the scored rows were audited on, from the rows themselves."""
        scored = Counter(r.get("holdout") or "" for r in self.rows if r["status"] in SCORED)
        if not scored:
            return ""
        if set(scored) == {""}:
            return (
                "Graded without a private hold-out: a submission that memorised the public "
                "test answers can go unnoticed."
            )
        if len(scored) == 1:
            return f"Audited on a private hold-out: {next(iter(scored))}."
        each = [f"{kind or 'none'} ({count} rows)" for kind, count in sorted(scored.items())]
        return f"Audited on private hold-outs that differ by row: {'; '.join(each)}."


@dataclass(frozen=True)
class Board:
    frame: pd.DataFrame  # the ranked table every format is made from
    specs: Mapping[str, Spec]
    policy: Policy = Policy.LATEST
    anonymized: bool = False
    target_names: list[str] = field(default_factory=list)
    # A public board (see build_board): messages blanked, and per assignment the flagged rows
    # left off, so its summary can say how many it does not show.
    public: bool = False
    held: Mapping[str, int] = field(default_factory=dict)

    @property
    def updated(self) -> str:
        """When the newest row shown was graded (the page says so; no clock is read)."""
        times = [t for t in self.frame.get("finished_at", []) if isinstance(t, str) and t]
        return max(times, default="")

    def sections(self, pictures: bool = False) -> list[Section]:
        sections = []
        for name in sorted(set(self.frame["assignment"])):
            rows = [_record(r, self.target_names) for r in _records(self.frame, name)]
            spec = self.specs.get(name)
            targets = spec.targets if spec else tuple(Target(n) for n in _named(rows))
            students = [r for r in rows if r["kind"] == STUDENT]
            sections.append(
                Section(
                    name=name,
                    title=spec.assignment.title if spec else name,
                    targets=targets,
                    rows=students,
                    references=[r for r in rows if r["kind"] != STUDENT],
                    summary=summarize(students, [t.name for t in targets], self.held.get(name, 0)),
                    picture=assignment_png(self.frame, name, spec) if pictures else b"",
                    histogram=histogram_png(self.frame, name, spec) if pictures else b"",
                )
            )
        return sections

    def to_json(self) -> dict[str, Any]:
        return {
            "updated": self.updated,
            "policy": str(self.policy),
            "anonymized": self.anonymized,
            "public": self.public,
            "notes": JSON_NOTES,
            "assignments": [
                {
                    "name": s.name,
                    "title": s.title,
                    "holdout": s.holdout_note,
                    "summary": s.summary.to_json(),
                    "targets": [
                        {
                            "name": t.name,
                            "description": t.description,
                            "min_test_accuracy": t.min_test_accuracy,
                            "max_gap": t.max_gap,
                        }
                        for t in s.targets
                    ],
                    "rows": [_public(r) for r in s.rows],
                    "references": [_public(r) for r in s.references],
                }
                for s in self.sections()
            ],
        }


def leaderboard(options: BoardOptions, log: Callable[[str], None]) -> tuple[Board, list[Path]]:
    """Render the store's board (never grading, and importing neither torch nor scikit-learn);
    anonymized, into a publish folder, saying which pseudonyms it would not show."""
    store = Store(options.store, create=False)
    results = store.standing(options.policy)
    if not results:
        raise StoreError(f"{options.store} holds no graded submissions; run `grader run` first")
    specs = load_specs(options.assignments)
    meta = {s: StudentMeta.from_dict(m) for s, m in store.students().items()}
    if not options.anonymize:
        # Only the instructor's own board names the students copy detection found alike.
        similar = None if options.public else similar_to(store.similar_pairs())
        board = build_board(
            results, specs, policy=options.policy, meta=meta, public=options.public, similar=similar
        )
        return board, write_board(board, options.out, options.formats)
    for line in refusal_lines(results, meta):
        log(line)
    secret = store.secret()
    board = build_board(
        results, specs, policy=options.policy, meta=meta, secret=secret, public=options.public
    )
    return board, publish_board(board, options.out, options.formats)


def build_board(
    results: Iterable[Result],
    specs: Mapping[str, Spec],
    *,
    policy: Policy = Policy.LATEST,
    meta: Mapping[str, StudentMeta] | None = None,
    secret: bytes | None = None,
    public: bool = False,
    similar: Mapping[tuple[str, str, str], str] | None = None,
) -> Board:
    """Rank the results; with a secret, under public names only (see anonymize.py). A public
    board shows no student's message (an exception's text, an audit's finding) and leaves
    flagged rows, held for an instructor's review, off: it counts them without naming them."""
    results, meta = list(results), dict(meta or {})
    held: Counter[str] = Counter()
    if public:
        flagged = Status.FLAGGED
        held = Counter(r.assignment for r in results if r.status is flagged and not r.reference)
        results = [replace(r, message="", log_tail="") for r in results if r.status is not flagged]
    if secret is not None:
        results, meta = anonymize(results, meta, secret)
    targets = board_targets(results, target_names(specs))
    frame = ranked(results, targets, meta, None if secret is not None else similar)
    return Board(frame, specs, Policy(policy), secret is not None, targets, public, dict(held))


def write_leaderboard(
    results: Iterable[Result],
    specs: Mapping[str, Spec],
    out: Path,
    meta: Mapping[str, StudentMeta] | None = None,
    similar: Mapping[tuple[str, str, str], str] | None = None,
) -> pd.DataFrame:
    """OUT/leaderboard.csv and OUT/leaderboard.png (what every run writes: the instructor's,
    with `similar_to` when given); returns the ranked board."""
    board = build_board(results, specs, meta=meta, similar=similar)
    write_board(board, out, ["csv"])
    return board.frame


def write_board(board: Board, out: Path, formats: Iterable[str]) -> list[Path]:
    """Write each format's file into out; returns the paths written."""
    written = []
    plot = ANONYMIZED_PLOT_NAME if board.anonymized else PLOT_NAME
    for name in formats:
        path = out / FORMATS[name]
        if name == "csv":
            write_csv(board.frame, path)
            plot_leaderboard(board.frame, board.specs, out / plot)
            written += [path, out / plot]
            continue
        if name == "json":
            text = json.dumps(board.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n"
        elif name == "md":
            plot_leaderboard(board.frame, board.specs, out / plot)
            written.append(out / plot)
            md = md_env().get_template("leaderboard.md.j2")
            # The picture's name is the grader's own.
            text = md.render(board=board, plot=MdSafe(plot), time_note=TIME_NOTE)
        else:
            text = render_html(board)
        with atomic_path(path) as temp:
            temp.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def publish_board(board: Board, folder: Path, formats: Iterable[str]) -> list[Path]:
    """Write an anonymized board into a folder that holds nothing else, ready to upload as it
    is. A folder holding anything else (a store, reports, a file of the instructor's) is
    refused; an earlier publish's files that this one does not write are removed, so every
    file there is this board's."""
    if not board.anonymized:
        raise ValueError("only an anonymized board is published")
    ours = {*FORMATS.values(), ANONYMIZED_PLOT_NAME}
    others = (
        sorted(p.name for p in folder.iterdir() if p.name not in ours) if folder.is_dir() else []
    )
    if others:
        raise PublishError(
            f"{folder} holds {', '.join(others)}, which no anonymized board wrote; move that "
            "out: the publish folder holds anonymized files only"
        )
    folder.mkdir(parents=True, exist_ok=True)
    written = write_board(board, folder, formats)
    for name in ours - {path.name for path in written}:
        (folder / name).unlink(missing_ok=True)
    return written


def render_html(board: Board) -> str:
    env = html_env()
    script = env.get_template("sort.js").render()
    style = env.get_template("page.css").render()
    return env.get_template("leaderboard.html.j2").render(
        board=board,
        sections=board.sections(pictures=True),
        script=script,
        style=style,
        time_note=TIME_NOTE,
        csp=f"default-src 'none'; img-src data:; style-src {csp_hash(style)}; "
        f"script-src {csp_hash(script)}",
    )


def rows_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every row of a ranked board as plain JSON values (for `grader run --json`)."""
    wanted = ["assignment", *JSON_COLUMNS, *(c for c in frame.columns if c.startswith("target_"))]
    return [
        {column: _plain(row.get(column)) for column in wanted}
        for assignment in sorted(set(frame["assignment"]))
        for row in _records(frame, assignment)
    ]


def _records(frame: pd.DataFrame, assignment: str) -> list[dict[str, Any]]:
    rows = frame[frame["assignment"] == assignment].astype(object)
    return [
        {str(k): (None if _missing(v) else v) for k, v in row.items()}
        for row in rows.to_dict("records")
    ]


def _record(row: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    row["targets"] = {name: row.get(target_column(name)) for name in targets}
    row["targets"] = {k: (None if v is None else bool(v)) for k, v in row["targets"].items()}
    return row


def _public(row: dict[str, Any]) -> dict[str, Any]:
    values = {column: _plain(row.get(column)) for column in JSON_COLUMNS}
    values["targets"] = row["targets"]
    values["seeds"] = list(seed_list(row.get("seeds")))
    return values


def _plain(value: Any) -> Any:
    """numpy scalars as the JSON types they are; text with its control and invisible characters
    shown as "?" (a JSON reader would decode an escaped override back into a live one)."""
    if isinstance(value, str):
        return visible(value)
    return value.item() if hasattr(value, "item") else value


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _named(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({name for r in rows for name, met in r["targets"].items() if met is not None})
