"""The course's real specs, and a small course on disk: three students, HAR only."""

from __future__ import annotations

from pathlib import Path

from grader.core.spec import load_specs
from support.grading import GOOD_HAR
from support.paths import ASSIGNMENTS

SPECS = load_specs(ASSIGNMENTS)
HAR = SPECS["har"]
STUDENTS = ("ana", "ben", "cy")


def without_baselines(spec_text: str) -> str:
    """A spec's text graded on its one seed and without its baselines, for tests about
    students' rows alone."""
    lines = spec_text.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(("baselines", "seeds")))


def write_course(tmp_path: Path, data: Path, timeout_seconds: int = 60) -> dict[str, Path]:
    """A submissions folder of three students and a HAR-only assignments folder (one seed, no
    baselines, small budgets)."""
    assignments = tmp_path / "assignments"
    assignments.mkdir()
    spec = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    spec = spec.replace("max_epochs = 100", "max_epochs = 5").replace(
        "timeout_seconds = 600", f"timeout_seconds = {timeout_seconds}"
    )
    (assignments / "har.toml").write_text(spec)
    submissions = tmp_path / "submissions"
    for i, student in enumerate(STUDENTS):
        (submissions / student).mkdir(parents=True)
        source = GOOD_HAR.replace('"lr": 0.01', f'"lr": 0.0{i + 1}')
        (submissions / student / "har.py").write_text(source)
    return {
        "submissions": submissions,
        "assignments": assignments,
        "out": tmp_path / "results",
        "data": data,
        "cache": tmp_path / "cache",
    }
