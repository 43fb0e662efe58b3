"""A report for every graded row: what the student learns from their result.

`build_report` gathers everything once (targets with their margins, the diagnosis, the
pictures, the facts of the run); the HTML page (one self-contained file, pictures embedded) and
its Markdown twin (pictures as PNG files beside it) are both rendered from it. Everything comes
from the stored Result and the spec: nothing is retrained.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.core.files import atomic_path
from grader.core.results import STUDENT, Mode, Result, SeedFigures, Status
from grader.core.spec import BOUNDARY_DIGITS, Audit, Spec, Target
from grader.core.submission import STUDENT_ID, StudentMeta
from grader.publish.diagnosis import Finding, diagnose
from grader.publish.render import (
    DASH,
    MdSafe,
    csp_hash,
    html_env,
    magnitude,
    md_env,
    percent,
    points,
)
from grader.publish.report_plots import classes_png, seeds_text, training_png

# OUT/reports/<student>/<assignment>.html and .md; a reference row's (a baseline's) under
# OUT/reports/<kind>s/<name>/, named for what it is.
REPORTS = "reports"
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
class AuditCheck:
    """One thing the integrity audit measured, in words, with the row's figure and what the
    spec's [audit] allows (before the allowance for sampling error the audit adds)."""

    what: str
    measured: str
    allowed: str


@dataclass(frozen=True)
class AuditExplained:
    """What a flagged row's report says about the audit, and how an instructor clears it."""

    how: str  # how the copies were changed, in words
    checks: tuple[AuditCheck, ...]
    seed: int | None  # the flagged seed, when the row was graded on several
    snippet: str  # the TOML for course/reviewed.toml that clears this exact file


@dataclass(frozen=True)
class Report:
    result: Result
    title: str
    targets: list[TargetResult]
    findings: list[Finding]
    command: str  # how to reproduce locally; "" for a reference row (no student file)
    class_names: list[str]
    meta: StudentMeta = field(default_factory=StudentMeta)
    training: bytes | None = None  # PNG
    classes: bytes | None = None  # PNG
    audit: AuditExplained | None = None  # a flagged row's

    @property
    def seeds(self) -> str:
        """The seeds the row's figures come from: "seed 0", or "seeds 0, 1, 2" (their mean)."""
        return seeds_text(self.result.graded_seeds)

    @property
    def averaged(self) -> bool:
        """The row's figures are several seeds' means; a failed or flagged row's are the seed's
        that failed (seeds.combine)."""
        several = len(self.result.graded_seeds) > 1
        return several and self.result.status in (Status.OK, Status.IRREPRODUCIBLE)

    @property
    def seeds_fact(self) -> str:
        """The seeds as "How it was graded" lists them, and whose figures the page shows."""
        seeds = ", ".join(map(str, self.result.graded_seeds))
        if self.averaged:
            return seeds + " (the accuracies are their mean)"
        if len(self.result.graded_seeds) > 1:
            return seeds + f" (the figures here are seed {self.result.seed}'s)"
        return seeds

    @property
    def per_seed(self) -> list[SeedFigures]:
        """Each seed's own figures, where there are several to tell apart."""
        return self.result.per_seed if len(self.result.per_seed) > 1 else []

    @property
    def per_seed_holdout(self) -> bool:
        return any(s["holdout_accuracy"] is not None for s in self.per_seed)

    @property
    def class_counts(self) -> str:
        """Which seeds the class tables count, for a row graded on several."""
        seeds = self.result.class_seeds
        if len(seeds) == 1:
            return (
                f"These tables are seed {seeds[0]}'s alone (this attempt was graded before the "
                "seeds' tables were summed), so they differ from the mean above."
            )
        return (
            f"Counted over {seeds_text(seeds)}: each seed's model predicted every example once, "
            f"so each example is counted {len(seeds)} times, and the diagonal's share of the "
            f"test counts, {percent(self.result.test_accuracy)}, is the mean test accuracy above."
        )

    @property
    def own_hparams(self) -> str:
        """The student's own HPARAMS keys as written, for the facts table ("" for none)."""
        return ", ".join(f"{k} = {v}" for k, v in self.result.own_hparams.items())

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
    result: Result,
    spec: Spec | None,
    meta: StudentMeta | None = None,
    *,
    pictures: bool = True,
    file: str | None = None,
) -> Report:
    """file: the name of the file the student checked (`grader check my_har.py`); a run's
    submissions are <assignment>.py."""
    classes = spec.assignment.num_classes if spec else _classes(result)
    findings = diagnose(result, spec)
    if result.reference:  # the grader's own model: nothing for anyone to change in it
        findings = [replace(f, advice=()) for f in findings]
    return Report(
        result=result,
        title=spec.assignment.title if spec else result.assignment,
        targets=[_target(result, t) for t in (spec.targets if spec else ())],
        findings=findings,
        command="" if result.reference else check_command(result, file),
        class_names=[spec.assignment.class_label(i) if spec else str(i) for i in range(classes)],
        meta=meta or StudentMeta(),
        training=training_png(result) if pictures and result.ok else None,
        classes=classes_png(result, spec) if pictures and result.ok else None,
        audit=_audit(result, spec) if result.status is Status.FLAGGED and spec else None,
    )


def check_command(result: Result, file: str | None = None) -> str:
    """The `grader check` line a student runs beside their file to see the same result."""
    name = shlex.quote(file or f"{result.assignment}.py")
    command = f"grader check {name} --assignment {result.assignment}"
    return command + (" --mode load" if result.mode is Mode.LOAD else "")


def report_folder(out: Path, student: str, kind: str = STUDENT) -> Path:
    """OUT/reports/<student>; a reference row's under OUT/reports/<kind>s/<its name>, its
    punctuation as dashes (baselines/sklearn-linear_svm). A name that is still not a valid id
    (a rejected submission's) gets one derived from it, so it can never point elsewhere."""
    if kind == STUDENT:
        return out / REPORTS / _folder_name(student, "rejected-")
    name = re.sub(r"[^A-Za-z0-9._-]", "-", student)
    return out / REPORTS / _folder_name(f"{kind}s", "kind-") / _folder_name(name, "reference-")


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
        written += write_report(report, report_folder(out, result.student, result.kind))
    return written


def _target(result: Result, target: Target) -> TargetResult:
    if not result.ok or result.test_accuracy is None or result.gap is None:
        return TargetResult(target, None)
    bounds = [Bound("test accuracy", result.test_accuracy, target.min_test_accuracy, True)]
    if target.max_gap is not None:
        bounds.append(Bound("train-test gap", result.gap, target.max_gap, False))
    met = result.targets.get(target.name)
    return TargetResult(target, bool(met) if met is not None else None, tuple(bounds))


def _audit(result: Result, spec: Spec) -> AuditExplained:
    audit = spec.audit
    moved = f"by {audit.noise:g} up or down" if audit.noise else "by one grey level"
    return AuditExplained(
        how=f"{audit.changed_values} of its values moved {moved}",
        checks=_audit_checks(result, audit),
        seed=result.seed if len(result.graded_seeds) > 1 else None,
        snippet=_review_snippet(result),
    )


def _audit_checks(result: Result, audit: Audit) -> tuple[AuditCheck, ...]:
    """The audit's four signals (scoring.audit_signals), each with the row's figure."""
    test, train, held = result.test_accuracy, result.train_accuracy, result.holdout_accuracy
    holdout = (
        AuditCheck("accuracy on a private hold-out", "not measured", DASH)
        if held is None
        else AuditCheck(
            f"test accuracy above the hold-out's ({percent(held)}; {result.holdout})",
            points(_difference(test, held)),
            f"at most {magnitude(audit.max_holdout_drop)}",
        )
    )
    return (
        AuditCheck(
            "how often the prediction on a changed copy equals the one on its original",
            percent(result.agreement),
            f"at least {percent(audit.min_agreement)}",
        ),
        AuditCheck(
            "test accuracy lost on the changed copies",
            points(result.perturbed_drop),
            f"at most {magnitude(audit.max_perturbed_drop)}",
        ),
        AuditCheck(
            f"test accuracy ({percent(test)}) above train accuracy ({percent(train)})",
            points(_difference(test, train)),
            f"at most {magnitude(audit.max_negative_gap)}",
        ),
        holdout,
    )


def _review_snippet(result: Result) -> str:
    """The [[reviewed]] table that clears this exact file (core/review.py reads it); the
    values as JSON strings, which TOML reads as the same basic strings."""
    return (
        "[[reviewed]]\n"
        f"student = {json.dumps(result.student)}\n"
        f"content_hash = {json.dumps(result.content_hash)}\n"
        'note = ""  # optional: what the review found\n'
    )


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _classes(result: Result) -> int:
    test = result.confusion.get("test") if isinstance(result.confusion, dict) else None
    return len(test) if isinstance(test, list) else 0


def _folder_name(name: str, prefix: str) -> str:
    return name if STUDENT_ID.fullmatch(name) else prefix + _digest(name)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]
