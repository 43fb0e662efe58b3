"""A report for every graded row: what the student learns from their result.

`build_report` gathers everything once (targets with their margins, the diagnosis, the
pictures, the facts of the run); the HTML page (one self-contained file, pictures embedded) and
its Markdown twin (pictures as PNG files beside it) are both rendered from it. Everything comes
from the stored Result and the spec: nothing is retrained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from grader.core.files import atomic_path
from grader.core.results import Mode, Result
from grader.core.spec import BOUNDARY_DIGITS, Spec, Target
from grader.core.submission import STUDENT_ID, StudentMeta
from grader.publish.diagnosis import Finding, diagnose
from grader.publish.render import MdSafe, csp_hash, html_env, md_env
from grader.publish.report_plots import classes_png, training_png

REPORTS = "reports"  # OUT/reports/<student>/<assignment>.html and .md
LOG_LINES = 30


@dataclass(frozen=True)
class Bound:
    """One condition of a target: the value, the bound, and the margin (positive: to spare)."""

    what: str  # "test accuracy" or "train-test gap"
    value: float
    bound: float
    above: bool  # the value must be above the bound (else below)

    @property
    def margin(self) -> float:
        return self.value - self.bound if self.above else self.bound - self.value

    @property
    def met(self) -> bool:
        value = round(self.value, BOUNDARY_DIGITS)  # as Target.is_met decides it
        return value > self.bound if self.above else value < self.bound


@dataclass(frozen=True)
class TargetResult:
    target: Target
    met: bool | None  # None: the row was not graded
    bounds: tuple[Bound, ...] = ()


@dataclass(frozen=True)
class Report:
    result: Result
    title: str
    targets: list[TargetResult]
    findings: list[Finding]
    command: str  # how to reproduce locally
    class_names: list[str]
    meta: StudentMeta = field(default_factory=StudentMeta)
    training: bytes | None = None  # PNG
    classes: bytes | None = None  # PNG

    @property
    def log_tail(self) -> str:
        return "\n".join(self.result.log_tail.strip("\n").splitlines()[-LOG_LINES:])

    @property
    def class_rows(self) -> list[dict[str, object]]:
        accuracy = (
            self.result.class_accuracy if isinstance(self.result.class_accuracy, dict) else {}
        )
        train, test = accuracy.get("train") or [], accuracy.get("test") or []
        return [
            {
                "name": name,
                "train": train[i] if i < len(train) else None,
                "test": test[i] if i < len(test) else None,
            }
            for i, name in enumerate(self.class_names)
        ]


def build_report(
    result: Result, spec: Spec | None, meta: StudentMeta | None = None, *, pictures: bool = True
) -> Report:
    classes = spec.assignment.num_classes if spec else _classes(result)
    return Report(
        result=result,
        title=spec.assignment.title if spec else result.assignment,
        targets=[_target(result, t) for t in (spec.targets if spec else ())],
        findings=diagnose(result, spec),
        command=check_command(result),
        class_names=[spec.assignment.class_label(i) if spec else str(i) for i in range(classes)],
        meta=meta or StudentMeta(),
        training=training_png(result) if pictures and result.ok else None,
        classes=classes_png(result, spec) if pictures and result.ok else None,
    )


def check_command(result: Result) -> str:
    """The `grader check` line a student runs beside their file to see the same result."""
    command = f"grader check {result.assignment}.py --assignment {result.assignment}"
    return command + (" --mode load" if result.mode is Mode.LOAD else "")


def report_folder(out: Path, student: str) -> Path:
    """OUT/reports/<student>; a folder name that is not a valid id (a rejected submission's)
    gets a name derived from it, so it can never point elsewhere."""
    safe = student if STUDENT_ID.fullmatch(student) else "rejected-" + _digest(student)
    return out / REPORTS / safe


def write_report(report: Report, folder: Path) -> list[Path]:
    """folder/<assignment>.html (self-contained) and folder/<assignment>.md with its pictures
    beside it as folder/<assignment>-training.png and -classes.png."""
    name = report.result.assignment
    pictures = {
        key: png
        for key, png in (("training", report.training), ("classes", report.classes))
        if png is not None
    }
    files = {f"{name}-{key}.png": png for key, png in pictures.items()}
    markdown = (
        md_env()
        .get_template("report.md.j2")
        .render(r=report, pictures={key: MdSafe(f"{name}-{key}.png") for key in pictures})
    )
    for key in ("training", "classes"):  # a picture an earlier attempt left, now unlinked
        if key not in pictures:
            (folder / f"{name}-{key}.png").unlink(missing_ok=True)
    written = []
    for file, data in [
        *files.items(),
        (f"{name}.md", markdown.encode()),
        (f"{name}.html", render_html(report).encode()),
    ]:
        with atomic_path(folder / file) as temp:
            temp.write_bytes(data)
        written.append(folder / file)
    return written


def render_html(report: Report) -> str:
    env = html_env()
    style = env.get_template("page.css").render()
    return env.get_template("report.html.j2").render(
        r=report,
        style=style,
        csp=f"default-src 'none'; img-src data:; style-src {csp_hash(style)}",
    )


def render_markdown(report: Report) -> str:
    """The report as Markdown without pictures (for Gradescope's output, a terminal)."""
    return md_env().get_template("report.md.j2").render(r=report, pictures={})


def write_reports(
    results: Iterable[Result],
    specs: dict[str, Spec],
    out: Path,
    meta: dict[str, StudentMeta] | None = None,
) -> list[Path]:
    written = []
    for result in results:
        report = build_report(
            result, specs.get(result.assignment), (meta or {}).get(result.student)
        )
        written += write_report(report, report_folder(out, result.student))
    return written


def _target(result: Result, target: Target) -> TargetResult:
    if not result.ok or result.test_accuracy is None or result.gap is None:
        return TargetResult(target, None)
    bounds = [Bound("test accuracy", result.test_accuracy, target.min_test_accuracy, True)]
    if target.max_gap is not None:
        bounds.append(Bound("train-test gap", result.gap, target.max_gap, False))
    met = result.targets.get(target.name)
    return TargetResult(target, bool(met) if met is not None else None, tuple(bounds))


def _classes(result: Result) -> int:
    test = result.confusion.get("test") if isinstance(result.confusion, dict) else None
    return len(test) if isinstance(test, list) else 0


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]
