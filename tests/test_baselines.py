"""scikit-learn baselines: graded once per spec and data into unranked reference rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support.course import without_baselines
from support.grading import GOOD_HAR, TEST_ENVIRONMENT
from support.paths import ASSIGNMENTS

from grader.core.results import Status
from grader.core.spec import BASELINES, Spec, SpecError, load_spec
from grader.data.cache import PreparedData
from grader.data.graded import GradingData
from grader.jobs.baselines import MODELS, grade_baseline
from grader.jobs.context import Settings, make_context
from grader.sandbox.box import Sandbox


def test_the_spec_names_only_models_the_grader_builds() -> None:
    assert tuple(MODELS) == BASELINES


@pytest.mark.parametrize("name", BASELINES)
def test_a_baseline_is_scored_and_audited_like_a_submission(
    name: str, tiny_har: PreparedData, har_spec: Spec
) -> None:
    ctx = make_context(har_spec, GradingData(tiny_har, None), TEST_ENVIRONMENT, Settings())
    result = grade_baseline(name, ctx)
    assert result.status is Status.OK, result.message
    assert result.kind == "baseline" and result.reference
    assert result.student == f"sklearn:{name}"
    assert result.agreement is not None and result.agreement >= 0.99
    assert result.test_accuracy is not None and set(result.targets) == {"A", "B"}
    assert grade_baseline(name, ctx).test_accuracy == result.test_accuracy  # seeded


def test_an_unknown_baseline_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "har.toml"
    text = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    path.write_text(text.replace("seed = 0\n", "seed = 0\nbaselines = ['knn']\n"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == (
        f"{path}: key 'grading.baselines[0]' must be one of "
        "logistic_regression, linear_svm, random_forest"
    )


def test_a_run_grades_the_baselines_once_and_every_board_shows_them(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    from support.data import write_tiny_har
    from support.runs import cpu_options

    from grader.api import run

    write_tiny_har(tmp_path / "data", 120, 60)
    assignments = tmp_path / "course" / "assignments"
    assignments.mkdir(parents=True)
    text = without_baselines((ASSIGNMENTS / "har.toml").read_text())
    text = text.replace("max_epochs = 100", "max_epochs = 5")
    text = text.replace("seed = 0\n", "seed = 0\nbaselines = ['logistic_regression']\n")
    (assignments / "har.toml").write_text(text)
    submissions = tmp_path / "submissions"
    (submissions / "ana").mkdir(parents=True)
    (submissions / "ana" / "har.py").write_text(GOOD_HAR)
    course = {"submissions": submissions, "assignments": assignments, "data": tmp_path / "data"}
    course["tmp"] = tmp_path
    logged: list[str] = []
    first = run(cpu_options(course), sandbox, logged.append)
    rows = first.board.set_index("student")
    assert rows.loc["sklearn:logistic_regression", "kind"] == "baseline"
    assert pd.isna(rows.loc["sklearn:logistic_regression", "rank"])
    assert rows.loc["ana", "rank"] == 1
    assert any(line.startswith("baseline har/sklearn:logistic_regression: ok") for line in logged)
    logged.clear()
    second = run(cpu_options(course), sandbox, logged.append)
    assert not any(line.startswith("baseline ") for line in logged)
    assert "sklearn:logistic_regression" in set(second.board["student"])
