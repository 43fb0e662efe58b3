"""A small course on disk: students' submissions and a HAR-only assignments folder."""

from __future__ import annotations

from pathlib import Path

from conftest import ASSIGNMENTS, GOOD_HAR, without_baselines

STUDENTS = ("ana", "ben", "cy")


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
