"""Grading one submission end to end through the sandbox, on tiny generated data."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from safetensors.torch import save
from support.grading import GOOD_HAR, GradeSource

from grader.core.results import Result
from grader.data.cache import PreparedData


def test_good_submission_is_graded(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR)
    assert result.status == "ok", result.message
    assert result.train_accuracy is not None and result.test_accuracy is not None
    assert 0.0 <= result.test_accuracy <= 1.0
    assert result.gap == pytest.approx(result.train_accuracy - result.test_accuracy)
    assert result.params == 561 * 16 + 16 + 16 * 6 + 6
    assert result.epochs == 2
    assert set(result.targets) == {"A", "B"}
    assert result.weights_sha256 and len(result.weights_sha256) == 64


def test_the_standard_loop_records_each_epoch_for_the_report(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR)
    assert [record["epoch"] for record in result.history] == [1, 2]
    for record in result.history:
        assert record["loss"] > 0 and 0.0 <= record["accuracy"] <= 1.0
        assert record["lr"] == 0.01 and record["val_accuracy"] is None
    assert result.best_epoch is None


def test_same_submission_twice_gives_identical_metrics_and_weights(
    grade_source: GradeSource,
) -> None:
    first, second = grade_source(GOOD_HAR), grade_source(GOOD_HAR)
    assert first.status == second.status == "ok"
    assert first.weights_sha256 == second.weights_sha256
    keys = ("test_accuracy", "train_accuracy", "gap", "params")
    assert [getattr(first, k) for k in keys] == [getattr(second, k) for k in keys]


def test_a_different_seed_gives_different_weights(grade_source: GradeSource) -> None:
    first, other = grade_source(GOOD_HAR, seed=0), grade_source(GOOD_HAR, seed=1)
    assert (first.seed, other.seed) == (0, 1)
    assert first.weights_sha256 != other.weights_sha256


def test_custom_train_function_is_used(grade_source: GradeSource) -> None:
    source = (
        GOOD_HAR
        + """
CALLS = []

def train(model, train_set, hparams):
    inputs, labels = train_set.tensors
    assert inputs.shape == (120, 561) and labels.dtype == torch.int64
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(hparams["epochs"]):
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""
    )
    result = grade_source(source)
    assert result.status == "ok", result.message


def _state_dict_bytes(suffix: str, *, hidden: int = 16) -> bytes:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(561, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 6)
    )
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if suffix == ".safetensors":
        return save(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_load_mode_evaluates_submitted_weights(grade_source: GradeSource, suffix: str) -> None:
    result = grade_source(
        GOOD_HAR, mode="load", weights=_state_dict_bytes(suffix), weights_suffix=suffix
    )
    assert result.status == "ok", result.message
    assert result.mode == "load"
    assert result.epochs is None


def test_auto_mode_loads_when_weights_are_present(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR, mode="auto", weights=_state_dict_bytes(".safetensors"))
    assert (result.status, result.mode) == ("ok", "load")


def test_load_mode_without_weights_is_invalid(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR, mode="load")
    assert (result.status, result.message) == (
        "invalid",
        "mode load needs har.safetensors or har.pt beside the submission",
    )


FAILURES = [
    pytest.param(
        "import torch\nHPARAMS = {'epochs': 1, 'batch_size': 8, 'lr': 0.1}\n",
        "invalid",
        "train: check defines_build_model failed: the module must define a function build_model()",
        id="missing-build-model",
    ),
    pytest.param(
        GOOD_HAR.replace('"epochs": 2', '"epochs": 50'),
        "invalid",
        "train: check hparams_valid failed: HPARAMS['epochs'] must be an integer from 1 to 5, "
        "not 50",
        id="too-many-epochs",
    ),
    pytest.param(
        GOOD_HAR.replace("num_classes))", "5))"),
        "invalid",
        "train: check forward_output_shape failed: model returned (2, 5) for a batch of 2, "
        "expected (2, 6)",
        id="wrong-output-shape",
    ),
    pytest.param(
        "import torch\nraise ImportError('no module named tensorflow')\n",
        "error",
        "train: ImportError: no module named tensorflow (line 2 of the submission)",
        id="import-error",
    ),
    pytest.param(
        GOOD_HAR + "\ndef train(model, train_set, hparams):\n    return 1 / 0\n",
        "error",
        "train: ZeroDivisionError: division by zero (line 12 of the submission)",
        id="train-raises",
    ),
    pytest.param(
        GOOD_HAR + "\nimport sys\nsys.exit(3)\n",
        "error",
        "train: the submission called exit(3)",
        id="sys-exit",
    ),
    pytest.param(
        GOOD_HAR + "\nclass NaNs(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.w = torch.nn.Linear(561, 6)\n"
        "    def forward(self, x):\n        return self.w(x) * float('nan')\n"
        "\ndef build_model(input_shape, num_classes):\n    return NaNs()\n"
        "\ndef train(model, train_set, hparams):\n    pass\n",
        "invalid",
        "the model produced NaN or infinite outputs",
        id="nan-outputs",
    ),
    pytest.param(
        GOOD_HAR + "\nimport os\nos._exit(7)\n",
        "crashed",
        "train exited with code 7 before reporting a result",
        id="os-exit",
    ),
    pytest.param(
        GOOD_HAR + "\nimport ctypes\nctypes.string_at(0)\n",
        "crashed",
        "train was killed by SIGSEGV before reporting a result",
        id="segfault",
    ),
]


@pytest.mark.parametrize(("source", "status", "message"), FAILURES)
def test_failure_becomes_a_result_row(
    grade_source: GradeSource, source: str, status: str, message: str
) -> None:
    result: Result = grade_source(source)
    assert (result.status, result.message) == (status, message)
    assert result.test_accuracy is None


def test_timeout_is_enforced(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR + "\nimport time\ntime.sleep(600)\n", timeout_seconds=8)
    assert (result.status, result.stage) == ("timeout", "importing the submission")
    assert result.message == (
        "train took longer than 8 s while importing the submission "
        "(its top-level code had not finished)"
    )


def test_memory_limit_is_enforced(grade_source: GradeSource) -> None:
    source = GOOD_HAR + "\nhog = torch.ones(4_000_000_000 // 4)\n"
    result = grade_source(source)
    assert result.status == "memory"
    assert result.message.startswith("train: ran out of memory")


def test_weights_for_another_architecture_are_invalid(grade_source: GradeSource) -> None:
    result = grade_source(
        GOOD_HAR, mode="load", weights=_state_dict_bytes(".safetensors", hidden=32)
    )
    assert result.status == "invalid"
    assert result.message.startswith(
        "eval: weights do not load into the model: Error(s) in loading state_dict for Sequential"
    )


# --- what a graded row keeps for its report and for Gradescope --------------------------------

CHECKS = [
    "defines_build_model", "defines_hparams", "hparams_valid", "build_model_returns_module",
    "model_has_parameters", "forward_output_shape",
]  # fmt: skip


def test_the_grader_computes_the_confusion_matrix_and_per_class_accuracy(
    grade_source: GradeSource, tiny_har: PreparedData
) -> None:
    result = grade_source(GOOD_HAR)
    assert result.ok
    for part, size in (("train", 120), ("test", 60)):
        matrix = np.asarray(result.confusion[part])
        assert matrix.shape == (6, 6) and matrix.sum() == size
        labels = tiny_har.load(f"{part}_labels")
        assert list(matrix.sum(axis=1)) == list(np.bincount(labels, minlength=6))
        accuracy = result.test_accuracy if part == "test" else result.train_accuracy
        assert np.trace(matrix) / size == pytest.approx(accuracy)
        per_class = result.class_accuracy[part]
        assert per_class == pytest.approx(list(np.diag(matrix) / matrix.sum(axis=1)))


def test_the_contract_checks_the_child_ran_are_kept(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR)
    assert result.checks == [{"name": name, "passed": True} for name in CHECKS]
    with_train = GOOD_HAR + "\ndef train(model, train_set, hparams):\n    pass\n"
    assert [c["name"] for c in grade_source(with_train).checks] == [
        *CHECKS[:3], "train_is_callable", "train_signature", *CHECKS[3:]]  # fmt: skip


def test_a_failed_check_is_kept_with_those_before_it(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR.replace("Linear(16, num_classes)", "Linear(16, 5)"))
    assert result.status == "invalid"
    assert result.checks == [
        *({"name": name, "passed": True} for name in CHECKS[:-1]),
        {"name": "forward_output_shape", "passed": False},
    ]


def test_a_submission_that_dies_has_no_checks(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR + "\nimport os\nos.abort()\n")
    assert (result.status, result.checks) == ("crashed", [])


REPORTING_TRAIN = """
def train(model, train_set, hparams, report_epoch):
    inputs, labels = train_set.tensors
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(hparams["epochs"]):
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        accuracy = (model(inputs).argmax(1) == labels).float().mean()
        report_epoch(loss=loss.detach(), accuracy=accuracy, lr=0.1)
"""


def test_a_custom_train_can_report_its_epochs(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR + REPORTING_TRAIN)
    assert result.ok, result.message
    assert [r["epoch"] for r in result.history] == [1, 2]
    for record in result.history:
        assert record["loss"] > 0 and 0 <= record["accuracy"] <= 1 and record["lr"] == 0.1
        assert record["val_accuracy"] is None


def test_a_keyword_only_callback_and_none_values_work(grade_source: GradeSource) -> None:
    source = GOOD_HAR + (
        "\ndef train(model, train_set, hparams, *, report_epoch=None):\n"
        "    for _ in range(hparams['epochs']):\n"
        "        report_epoch(val_accuracy=0.5)\n"
    )
    result = grade_source(source)
    assert [(r["epoch"], r["loss"], r["val_accuracy"]) for r in result.history] == [
        (1, None, 0.5), (2, None, 0.5)]  # fmt: skip


def test_a_three_argument_train_is_called_without_the_callback(grade_source: GradeSource) -> None:
    source = GOOD_HAR + (
        "\ndef train(model, train_set, hparams, *extra, **options):\n"
        "    assert extra == () and options == {}, (extra, options)\n"
    )
    result = grade_source(source)
    assert result.ok, result.message
    assert result.history == []


def test_a_bad_value_for_the_callback_is_the_student_error(grade_source: GradeSource) -> None:
    source = GOOD_HAR + (
        "\ndef train(model, train_set, hparams, report_epoch):\n    report_epoch(loss='low')\n"
    )
    result = grade_source(source)
    assert result.status == "error"
    assert result.message == (
        "train: TypeError: report_epoch(loss=...) takes a number, not str (line 12 of the "
        "submission)"
    )
