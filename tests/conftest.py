"""Shared fixtures: tiny generated data, a sandbox, small specs and courses, a one-call grader."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.grading import TEST_ENVIRONMENT, TINY_TEST, TINY_TRAIN, GradeSource
from support.layers import require_sandbox
from support.paths import ASSIGNMENTS

from grader.core.results import Mode, Result
from grader.core.spec import Budgets, Spec, load_spec
from grader.core.submission import from_file
from grader.data.cache import PreparedData
from grader.data.holdout import HoldoutData
from grader.data.registry import prepare
from grader.jobs.context import GradingContext, Settings
from grader.jobs.grade import grade
from grader.sandbox.box import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The real sandbox, warm where this machine allows; in CI (GRADER_REQUIRE_SANDBOX=1)
    every layer must be on."""
    with Sandbox(require=require_sandbox()) as box:
        yield box


@pytest.fixture(scope="session")
def cold_sandbox() -> Iterator[Sandbox]:
    """The real sandbox starting a fresh process per job phase (--no-warm)."""
    with Sandbox(require=require_sandbox(), warm=False) as box:
        yield box


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding a tiny UCI HAR in its original text format, for whole runs."""
    from support.data import write_tiny_har

    root = tmp_path_factory.mktemp("tiny-data")
    write_tiny_har(root, TINY_TRAIN, TINY_TEST)
    return root


@pytest.fixture(scope="session")
def tiny_har(tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    cache = tmp_path_factory.mktemp("tiny-cache")
    return prepare("uci_har", tiny_data_dir, cache, download=False)


@pytest.fixture(scope="session")
def har_spec() -> Spec:
    """The real HAR spec with budgets small enough for tests."""
    spec = load_spec(ASSIGNMENTS / "har.toml")
    budgets = Budgets(
        max_epochs=5, timeout_seconds=60, memory_mb=2048, max_weights_mb=4, max_output_mb=16
    )
    return dataclasses.replace(spec, budgets=budgets)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    value = os.environ.get("GRADER_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("set GRADER_DATA_DIR to the folder holding MNIST/ and UCI_HAR/")
    return Path(value)


@pytest.fixture
def course(tmp_path: Path, tiny_data_dir: Path) -> dict[str, Path]:
    """write_course's three students over the tiny data."""
    from support.course import write_course

    return write_course(tmp_path, tiny_data_dir)


@pytest.fixture
def grade_source(
    tmp_path: Path, sandbox: Sandbox, tiny_har: PreparedData, har_spec: Spec
) -> GradeSource:
    """Write a submission's source (and optional weights) and grade it on the tiny HAR data."""

    def run(
        source: str,
        *,
        student: str = "student",
        mode: Mode = Mode.RETRAIN,
        weights: bytes | None = None,
        weights_suffix: str = ".safetensors",
        spec: Spec | None = None,
        data: PreparedData | None = None,
        sandbox: Sandbox = sandbox,
        timeout_seconds: float | None = None,
        verify_determinism: bool = False,
        holdout: HoldoutData | None = None,
        reviewed: frozenset[tuple[str, str]] = frozenset(),
        seed: int | None = None,
    ) -> Result:
        folder = tmp_path / "submissions" / student
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "har.py"
        path.write_text(textwrap.dedent(source))
        if weights is not None:
            (folder / f"har{weights_suffix}").write_bytes(weights)
        used = spec or har_spec
        settings = Settings(
            Mode(mode), timeout_seconds=timeout_seconds, verify_determinism=verify_determinism
        )
        ctx = GradingContext(
            spec=used,
            data=data or tiny_har,
            environment=TEST_ENVIRONMENT,
            seed=used.grading.all_seeds[0] if seed is None else seed,
            settings=settings,
            holdout=holdout,
            reviewed=reviewed,
        )
        return grade(from_file(path, "har", used.budgets.weights_bytes), ctx, sandbox)

    return run
