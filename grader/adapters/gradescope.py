"""Gradescope: the autograder zip, and one submission graded into `results/results.json`.

Gradescope unzips the autograder into /autograder/source, runs `setup.sh` once to build its
image, then `run_autograder` for every submission with the student's files in
/autograder/submission; it reads /autograder/results/results.json (its "autograder
specifications"). That file lists one test per contract check and per target, with points from
the spec, the report's Markdown as the output, and the leaderboard's three columns. A
submission that fails, or crashes, gets a valid file too.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grader
from grader.core.errors import UserError
from grader.core.files import atomic_path
from grader.core.results import Result, Status
from grader.core.spec import PACKAGED, Spec, load_specs, pick_spec
from grader.core.submission import assignment_of
from grader.publish.render import md_text
from grader.publish.reports import Report, build_report, render_markdown

TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # CPU wheels: Gradescope has no GPU
RESULTS = Path("results") / "results.json"
ROOT = Path("/autograder")


class GradescopeError(UserError):
    """The autograder cannot be built or run as asked; one line, naming what is wrong."""


SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
set -euo pipefail
cd /autograder/source
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv python3-pip \\
  bubblewrap libseccomp2
PY=""
for candidate in python3.13 python3.12 python3.11; do
  if command -v "$candidate" >/dev/null; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then  # course-grader needs Python 3.11 or newer
  DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11 python3.11-venv
  PY=python3.11
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y "$PY-venv" || true
"$PY" -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install --extra-index-url {index} {install}
# The dataset is downloaded and verified once, into the image, not per submission.
export GRADER_DATA_DIR=/autograder/data GRADER_CACHE_DIR=/autograder/cache
/autograder/venv/bin/grader data {dataset}
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission; it writes /autograder/results/results.json.
export GRADER_DATA_DIR=/autograder/data GRADER_CACHE_DIR=/autograder/cache
exec /autograder/venv/bin/grader gradescope run --root /autograder --assignment {name}
"""


# --- build ------------------------------------------------------------------------------------


def build_zip(
    spec: Spec, out: Path, *, wheel: Path | None = None, install: str | None = None
) -> list[str]:
    """Write the autograder zip: setup.sh, run_autograder, the spec, and the grader's wheel
    (given, or built from this source checkout) unless an install line replaces it. Returns
    the names in the zip."""
    with tempfile.TemporaryDirectory(prefix="grader-gradescope-") as folder:
        if install is None:
            wheel = wheel or build_wheel(Path(folder))
            install = f"/autograder/source/{wheel.name}"
        files: dict[str, bytes] = {
            "setup.sh": SETUP_SH.format(
                index=TORCH_INDEX, install=_quoted(install), dataset=spec.assignment.dataset
            ).encode(),
            "run_autograder": RUN_AUTOGRADER.format(name=spec.name).encode(),
            f"{spec.name}.toml": spec.path.read_bytes(),
        }
        if wheel is not None:
            files[wheel.name] = wheel.read_bytes()
        with atomic_path(out) as temp, zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                executable = name in ("setup.sh", "run_autograder")
                info.external_attr = (0o755 if executable else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        return list(files)


def build_wheel(folder: Path) -> Path:
    """course-grader's wheel, built in this process from the checkout it is installed from
    (an editable install); a copy of the sources keeps the checkout clean."""
    project = Path(grader.__file__).resolve().parent.parent
    if not (project / "pyproject.toml").is_file():
        raise GradescopeError(
            "course-grader is not installed from a source checkout, so its wheel cannot be "
            "built here; pass --wheel FILE or --install-line 'course-grader==VERSION'"
        )
    source = folder / "source"
    shutil.copytree(
        project / "grader", source / "grader", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):  # all the build reads besides the package
        shutil.copyfile(project / name, source / name)
    wheels = folder / "wheels"
    wheels.mkdir()
    from setuptools import build_meta

    log = io.StringIO()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.chdir(source),
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            warnings.simplefilter("ignore")  # setuptools' notes on metadata: not the user's
            name = build_meta.build_wheel(str(wheels))
    except Exception as exc:  # setuptools reports build problems in many ways
        raise GradescopeError(f"building course-grader's wheel failed: {exc}") from None
    return wheels / name


def _quoted(install: str) -> str:
    """The pip arguments as one shell word each (an install line is the instructor's own)."""
    import shlex

    return " ".join(shlex.quote(word) for word in shlex.split(install))


# --- run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    spec: Spec
    source: Path | None  # the submitted file; None with `problem`
    problem: str = ""


def locate(root: Path, assignment: str | None) -> Located:
    """The spec (ROOT/source's, else the packaged course's) and the submitted file: the
    assignment named, else the spec the zip carries, else the one the file's name names."""
    folder = root / "source"
    has_specs = folder.is_dir() and any(folder.glob("*.toml"))
    specs = load_specs(folder if has_specs else PACKAGED)
    submitted = sorted((root / "submission").glob("*.py"))
    name = assignment
    if name is None and has_specs and len(specs) == 1:
        name = next(iter(specs))
    if name is None and len(submitted) == 1:
        name = assignment_of(submitted[0], specs)
    spec = pick_spec(specs, name)
    expected = root / "submission" / f"{spec.name}.py"
    if expected.is_file():
        return Located(spec, expected)
    if len(submitted) == 1:
        return Located(spec, submitted[0])
    found = ", ".join(p.name for p in submitted) or "no .py file"
    return Located(spec, None, f"expected {spec.name}.py in the submission; found {found}")


def run(root: Path, assignment: str | None, check: Callable[[Path, Spec], Result]) -> Result:
    """Grade ROOT/submission's file with `check` and write ROOT/results/results.json."""
    started = time.monotonic()
    located = locate(root, assignment)
    if located.source is None:
        result = Result("submission", located.spec.name, Status.INVALID, located.problem)
    else:
        result = check(located.source, located.spec)
    seconds = time.monotonic() - started
    name = located.source.name if located.source is not None else None
    write_results(root, results_json(result, located.spec, seconds, name))
    return result


def results_json(
    result: Result, spec: Spec, seconds: float, file: str | None = None
) -> dict[str, Any]:
    """Gradescope's results.json for one graded (or failed) submission; file: the name of the
    file the student uploaded, which the report's command repeats."""
    report = build_report(result, spec, pictures=False, file=file)
    tests = [*_check_tests(result, spec), *_target_tests(report)]
    document: dict[str, Any] = {
        "score": round(sum(t["score"] for t in tests), 4),
        "execution_time": round(seconds, 1),
        "output": render_markdown(report),
        "output_format": "md",
        "test_output_format": "md",
        "visibility": spec.gradescope.visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if result.ok:
        document["leaderboard"] = leaderboard(result)
    return document


def failed_json(message: str, seconds: float, visibility: str = "visible") -> dict[str, Any]:
    """When the grader itself could not grade (missing data, a broken spec): a valid file."""
    return {
        "score": 0,
        "execution_time": round(seconds, 1),
        "output": "The autograder could not grade this submission: "
        + md_text(message)
        + "\n\nThis is not a problem with your code; please tell your instructor.",
        "output_format": "md",
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": [],
    }


def leaderboard(result: Result) -> list[dict[str, Any]]:
    """The board's ranking columns: test accuracy (higher first), then gap and parameters
    (lower first); accuracies in percent."""
    return [
        {
            "name": "test accuracy",
            "value": round((result.test_accuracy or 0) * 100, 2),
            "order": "desc",
        },
        {"name": "gap", "value": round((result.gap or 0) * 100, 2), "order": "asc"},
        {"name": "params", "value": int(result.params or 0), "order": "asc"},
    ]


def write_results(root: Path, document: dict[str, Any]) -> Path:
    path = root / RESULTS
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _check_tests(result: Result, spec: Spec) -> list[dict[str, Any]]:
    points = spec.gradescope.check_points
    checks = [c for c in result.checks if isinstance(c, dict)]
    if not checks:  # it never got as far as the checks: it did not import, or was rejected
        return [
            _test(
                "1.1",
                "contract: the submission loads",
                passed=False,
                points=points,
                output=f"**{md_text(result.status)}**: {md_text(result.message)}",
                tag="contract",
            )
        ]
    tests = []
    for i, check in enumerate(checks, 1):
        passed = bool(check.get("passed"))
        output = "passed" if passed else f"**failed**: {md_text(result.message)}"
        tests.append(
            _test(f"1.{i}", f"contract: {check.get('name')}", passed, points, output, "contract")
        )
    return tests


def _target_tests(report: Report) -> list[dict[str, Any]]:
    result = report.result
    tests = []
    for i, target in enumerate(report.targets, 1):
        met = bool(target.met)
        if target.met is None:
            output = f"Not graded: the submission failed ({md_text(result.status)})."
        else:
            output = "\n".join(
                f"- {b.what}: {_shown(b.what, b.value)}, needed {'>' if b.above else '<'} "
                f"{_shown(b.what, b.bound, signed=False)}, margin {b.margin * 100:+.2f} points "
                f"({'met' if b.met else 'missed'})"
                for b in target.bounds
            )
        name = f"target {target.target.name}: {target.target.description}"
        tests.append(_test(f"2.{i}", name, met, target.target.points, output, "target"))
    return tests


def _test(
    number: str, name: str, passed: bool, points: float, output: str, tag: str
) -> dict[str, Any]:
    return {
        "number": number,
        "name": name,
        "status": "passed" if passed else "failed",
        "score": points if passed else 0,
        "max_score": points,
        "output": output,
        "output_format": "md",
        "tags": [tag],
    }


def _shown(what: str, value: float, signed: bool = True) -> str:
    if what == "test accuracy":
        return f"{value * 100:.2f}%"
    return f"{value * 100:+.2f} points" if signed else f"{value * 100:.2f} points"
