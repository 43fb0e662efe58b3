"""The lessons' experiments for the new HPARAMS, graded on the real UCI HAR data (GRADER_DATA_DIR):
RAdam with a step decay, MSE on one-hot targets and early stopping each grade ok, and training
twice gives bit-identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.grading import TEST_ENVIRONMENT
from support.paths import ASSIGNMENTS, REPO

from grader.core.results import Status
from grader.core.spec import load_spec
from grader.core.submission import from_file
from grader.data.cache import PreparedData
from grader.data.graded import GradingData
from grader.data.registry import prepare
from grader.jobs.context import Settings, make_context
from grader.jobs.grade import grade
from grader.sandbox.box import Sandbox

pytestmark = pytest.mark.slow
EXPERIMENTS = REPO / "course" / "lessons" / "experiments"


@pytest.fixture(scope="module")
def har_data(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    return prepare("uci_har", real_data_dir, tmp_path_factory.mktemp("cache"), download=False)


@pytest.mark.parametrize("name", ["har_radam_steplr", "har_mse", "har_early_stopping"])
def test_a_lesson_experiment_grades_ok_and_deterministically(
    name: str, har_data: PreparedData, sandbox: Sandbox
) -> None:
    spec = load_spec(ASSIGNMENTS / "har.toml")
    # verify_determinism trains twice; differing weights fail the row.
    settings = Settings(verify_determinism=True)
    context = make_context(spec, GradingData(har_data, None), TEST_ENVIRONMENT, settings)
    submission = from_file(EXPERIMENTS / f"{name}.py", "har", spec.budgets.weights_bytes)
    result = grade(submission, context, sandbox)
    assert result.status is Status.OK, result.message
    assert result.test_accuracy is not None and result.test_accuracy > 0.9
    if name == "har_early_stopping":
        assert result.epochs is not None and result.epochs < 100  # it stopped early
        assert len(result.history) == result.epochs
        assert all(record["val_accuracy"] is not None for record in result.history)
