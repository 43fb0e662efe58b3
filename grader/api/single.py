"""One file graded as a run would grade it: `grader check`, and Gradescope's autograder."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.adapters import gradescope
from grader.api.batch import grade_all
from grader.api.common import Log, find_specs, grading_data, log_grading, open_sandbox
from grader.core.errors import UserError
from grader.core.files import atomic_copy, weights_path
from grader.core.results import Environment, Result
from grader.core.spec import Spec, SpecsAsked, load_specs, pick_spec
from grader.core.submission import assignment_of, from_file
from grader.data.graded import GradingData
from grader.execute.local import LocalExecutor
from grader.jobs.context import Settings, make_context
from grader.jobs.environment import environment
from grader.publish.errors import PublishError
from grader.publish.reports import Report, build_report, write_report
from grader.sandbox.box import Sandbox, SandboxOptions


@dataclass(frozen=True)
class CheckOptions:
    file: Path
    data_dir: Path
    cache_dir: Path
    assignment: str | None = None  # None: the one the file's name names
    specs: SpecsAsked = field(default_factory=SpecsAsked)
    settings: Settings = field(default_factory=Settings)  # its weights_dir is check_file's
    device: str = "auto"
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)
    save_weights: Path | None = None  # copy the graded weights here
    report_dir: Path | None = None  # write the report here, as a run does


@dataclass(frozen=True)
class Checked:
    result: Result
    spec: Spec
    report: Report
    report_files: list[Path] = field(default_factory=list)


def check(
    file: Path,
    spec: Spec,
    sandbox: Sandbox,
    data: GradingData,
    settings: Settings | None = None,
    env: Environment | None = None,
) -> Result:
    """Grade one file exactly as a run would (the same context, seeds and audit, reviewed rows
    honoured), without a store."""
    ctx = make_context(spec, data, env or environment(), settings or Settings())
    sub = from_file(file, spec.name, spec.budgets.weights_bytes)
    results: list[Result] = []
    executor = LocalExecutor(sandbox, workers=1)
    try:
        grade_all(executor, [(sub, ctx)], lambda result, _done: results.append(result))
    finally:
        executor.close()
    return results[0]


def check_file(options: CheckOptions, log: Log) -> Checked:
    """`grader check`: one file graded exactly as a run would, its weights and report kept
    where asked."""
    env = environment(options.device)
    specs = load_specs(find_specs(options.specs, options.file.parent, log))
    spec = pick_spec(specs, options.assignment or assignment_of(options.file, specs))
    data = grading_data(spec, options.data_dir, options.cache_dir)
    brief = open_sandbox(options.sandbox, log, brief=True)  # a student reads this one
    with brief as sandbox, _staging(options.save_weights) as kept:
        log_grading(options.file, spec, data, log)
        settings = replace(options.settings, weights_dir=kept)
        result = check(options.file, spec, sandbox, data, settings, env)
        if options.save_weights and kept and result.ok:
            atomic_copy(weights_path(kept, spec.name, result.student), options.save_weights)
    pictures = options.report_dir is not None
    report = build_report(result, spec, pictures=pictures, file=options.file.name)
    if options.report_dir is None:
        return Checked(result, spec, report)
    try:
        return Checked(result, spec, report, write_report(report, options.report_dir))
    except OSError as exc:
        raise PublishError(
            f"cannot write the report into {options.report_dir}: {exc.strerror or exc}"
        ) from None


@dataclass(frozen=True)
class GradescopeOptions:
    root: Path  # Gradescope's folder: ROOT/submission in, ROOT/results/results.json out
    data_dir: Path
    cache_dir: Path
    assignment: str | None = None  # None: the spec in ROOT/source, else the file's name
    settings: Settings = field(default_factory=Settings)
    sandbox: SandboxOptions = field(default_factory=SandboxOptions)


def gradescope_run(options: GradescopeOptions, log: Log) -> Result:
    """`grader gradescope run`: ROOT/submission graded into ROOT/results/results.json; when the
    grader itself cannot grade, results.json says so too."""
    started = time.monotonic()

    def graded(file: Path, spec: Spec) -> Result:
        data = grading_data(spec, options.data_dir, options.cache_dir)
        with open_sandbox(options.sandbox, log) as sandbox:
            log_grading(file, spec, data, log)
            return check(file, spec, sandbox, data, options.settings)

    try:
        result = gradescope.run(options.root, options.assignment, graded)
    except UserError as exc:
        seconds = time.monotonic() - started
        gradescope.write_results(options.root, gradescope.failed_json(str(exc), seconds))
        raise
    written = options.root / gradescope.RESULTS
    log(f"{result.student}/{result.assignment}: {result.status}; wrote {written}")
    return result


def gradescope_build(
    assignment: str,
    output: Path,
    asked: SpecsAsked,
    log: Log,
    *,
    wheel: Path | None = None,
    install_line: str | None = None,
) -> list[str]:
    """`grader gradescope build`: the autograder zip; the names of the files it holds."""
    if wheel and install_line:
        raise gradescope.GradescopeError("--wheel and --install-line contradict each other")
    spec = pick_spec(load_specs(find_specs(asked, Path.cwd(), log)), assignment)
    names = gradescope.build_zip(spec, output, wheel=wheel, install=install_line)
    log(f"wrote {output}: {', '.join(names)}")
    return names


@contextmanager
def _staging(save_weights: Path | None) -> Iterator[Path | None]:
    if save_weights is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="grader-weights-") as folder:
        yield Path(folder)
