"""The submission contract: HPARAMS parsing and the named module/model checks."""

from __future__ import annotations

import importlib.util
import math
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from grader.child.contract import (
    ContractError,
    HParams,
    hparam_warnings,
    model_checks,
    module_checks,
    parse_hparams,
    run_checks,
    shown_own,
)
from grader.child.hparams import optimizers

STARTER = Path(__file__).resolve().parents[1] / "starter"
VALID = {"epochs": 3, "batch_size": 32, "lr": 0.01}


def load_starter(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"starter_{name}", STARTER / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_module(**attributes: Any) -> types.ModuleType:
    module = types.ModuleType("submission")
    for name, value in attributes.items():
        setattr(module, name, value)
    return module


def build_linear(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Linear(input_shape[0], num_classes)


# --- parse_hparams --------------------------------------------------------------------------


def test_mnist_starter_is_the_classic_tutorial_setup() -> None:
    assert parse_hparams(load_starter("mnist").HPARAMS, 10) == HParams(
        epochs=3, batch_size=10, lr=1e-3, optimizer="adam", weight_decay=0.0, loss="nll"
    )


def test_har_starter_hparams_are_accepted_and_use_adam() -> None:
    hparams = parse_hparams(load_starter("har").HPARAMS, 100)
    assert (hparams.optimizer, hparams.loss) == ("adam", "cross_entropy")


def test_defaults_fill_optional_keys() -> None:
    assert parse_hparams(VALID, 10) == HParams(3, 32, 0.01, "adam", 0.0, 0.0, "cross_entropy")


@pytest.mark.parametrize(
    "extra",
    [
        {"epochs": 1},
        {"epochs": 10},
        {"batch_size": 1},
        {"lr": 0},
        {"lr": 1},
        {"optimizer": "sgd", "momentum": 0.9},
        {"optimizer": "adamw", "weight_decay": 0.01},
        {"loss": "nll"},
    ],
)
def test_valid_edges_are_accepted(extra: dict[str, Any]) -> None:
    hp = parse_hparams({**VALID, **extra}, 10)
    for key, value in extra.items():
        assert getattr(hp, key) == value


HPARAM_ERRORS = [
    ([1, 2], "HPARAMS must be a dict"),
    (None, "HPARAMS must be a dict"),
    ({**VALID, 1: "x"}, "HPARAMS keys must be strings, not 1"),
    ({"batch_size": 32, "lr": 0.01}, "HPARAMS is missing 'epochs'"),
    (
        {"epoch": 3, "batch_size": 32, "lr": 0.01},
        "HPARAMS is missing 'epochs' (is your 'epoch' meant to be it?)",
    ),
    (
        {"epochs": 3, "batch_size": 32, "learning_rate": 0.01},
        "HPARAMS is missing 'lr' (is your 'learning_rate' meant to be it?)",
    ),
    ({"epochs": 3, "lr": 0.01}, "HPARAMS is missing 'batch_size'"),
    ({"epochs": 3, "batch_size": 32}, "HPARAMS is missing 'lr'"),
    ({**VALID, "epochs": 11}, "HPARAMS['epochs'] must be an integer from 1 to 10, not 11"),
    ({**VALID, "epochs": 0}, "HPARAMS['epochs'] must be an integer from 1 to 10, not 0"),
    ({**VALID, "epochs": True}, "HPARAMS['epochs'] must be an integer from 1 to 10, not True"),
    ({**VALID, "epochs": 3.0}, "HPARAMS['epochs'] must be an integer from 1 to 10, not 3.0"),
    ({**VALID, "epochs": "3"}, "HPARAMS['epochs'] must be an integer from 1 to 10, not '3'"),
    (
        {**VALID, "batch_size": 0},
        "HPARAMS['batch_size'] must be an integer from 1 to 1000000, not 0",
    ),
    ({**VALID, "lr": -0.1}, "HPARAMS['lr'] must be a non-negative number, not -0.1"),
    ({**VALID, "lr": math.nan}, "HPARAMS['lr'] must be a non-negative number, not nan"),
    ({**VALID, "lr": math.inf}, "HPARAMS['lr'] must be a non-negative number, not inf"),
    ({**VALID, "lr": "0.1"}, "HPARAMS['lr'] must be a non-negative number, not '0.1'"),
    ({**VALID, "lr": True}, "HPARAMS['lr'] must be a non-negative number, not True"),
    (
        {**VALID, "weight_decay": -1e-4},
        "HPARAMS['weight_decay'] must be a non-negative number, not -0.0001",
    ),
    ({**VALID, "momentum": None}, "HPARAMS['momentum'] must be a non-negative number, not None"),
    (
        {**VALID, "optimizer": "adamm"},
        "HPARAMS['optimizer'] must name a class in torch.optim "
        f"({', '.join(sorted(optimizers()))}), not 'adamm'",
    ),
    (
        {**VALID, "loss": "hinge"},
        "HPARAMS['loss'] must be one of cross_entropy (on logits); nll (on log-probabilities, "
        "from a forward ending in log_softmax); mse (between softmax(outputs) and one-hot "
        "labels); not 'hinge'",
    ),
]


@pytest.mark.parametrize(("raw", "message"), HPARAM_ERRORS, ids=[m for _, m in HPARAM_ERRORS])
def test_bad_hparams(raw: Any, message: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_hparams(raw, 10)
    assert str(info.value) == message


def test_students_own_keys_pass_through_and_only_misspellings_warn() -> None:
    raw = {**VALID, "gamma": 0.7, "step_size": 1, "learning_rate": 0.1, "Batch_Size": 8}
    assert parse_hparams(raw, 10) == parse_hparams(VALID, 10)
    assert shown_own(raw) == {
        "gamma": "0.7",
        "step_size": "1",
        "learning_rate": "0.1",
        "Batch_Size": "8",
    }
    assert hparam_warnings(raw) == [
        "HPARAMS['learning_rate'] looks like a misspelling of 'lr': the grader reads 'lr' "
        "(your own keys reach your train() unchanged)",
        "HPARAMS['Batch_Size'] looks like a misspelling of 'batch_size': the grader reads "
        "'batch_size' (your own keys reach your train() unchanged)",
    ]


def test_an_own_value_is_shown_shortened() -> None:
    assert shown_own({**VALID, "notes": "x" * 100}) == {"notes": repr("x" * 100)[:40]}


# --- module checks --------------------------------------------------------------------------


def test_module_checks_pass_on_a_complete_module() -> None:
    module = fake_module(build_model=build_linear, HPARAMS=dict(VALID))
    assert run_checks(module_checks(module, 10)) == [
        "defines_build_model",
        "defines_hparams",
        "hparams_valid",
    ]


def test_optional_train_is_checked_when_present() -> None:
    module = fake_module(build_model=build_linear, HPARAMS=dict(VALID), train=lambda *a: None)
    assert run_checks(module_checks(module, 10))[-2:] == ["train_is_callable", "train_signature"]


def clashing_train(model, loader, criterion, optimizer, epoch):  # type: ignore[no-untyped-def]
    """A tutorial's per-epoch train(), as the student kept it."""


@pytest.mark.parametrize(
    ("train", "passes"),
    [
        (lambda model, train_set, hparams: None, True),
        (lambda model, train_set, hparams, report_epoch: None, True),
        (lambda model, train_set, hparams, report_epoch=None, verbose=False: None, True),
        (lambda *args, **kwargs: None, True),
        (clashing_train, False),
        (lambda model, train_set: None, False),
    ],
)
def test_train_signature(train: Any, passes: bool) -> None:
    module = fake_module(build_model=build_linear, HPARAMS=dict(VALID), train=train)
    if passes:
        run_checks(module_checks(module, 10))
        return
    with pytest.raises(ContractError, match=r"^check train_signature failed: your train\("):
        run_checks(module_checks(module, 10))


def test_a_clashing_train_is_named_with_its_line() -> None:
    module = fake_module(build_model=build_linear, HPARAMS=dict(VALID), train=clashing_train)
    line = clashing_train.__code__.co_firstlineno
    with pytest.raises(ContractError) as info:
        run_checks(module_checks(module, 10))
    assert str(info.value) == (
        "check train_signature failed: your train(model, loader, criterion, optimizer, epoch) "
        f"on line {line} is not the grader's train(model, train_set, hparams[, report_epoch]), "
        "which it calls to train your model; rename yours (e.g. train_epoch) and call it from "
        "a train(model, train_set, hparams)"
    )


@pytest.mark.parametrize("name", ["har", "mnist"])
def test_starters_pass_every_check(name: str) -> None:
    module = load_starter(name)
    shape, classes, epochs = {"har": ((561,), 6, 100), "mnist": ((1, 28, 28), 10, 10)}[name]
    assert len(run_checks(module_checks(module, epochs))) == 3
    model = module.build_model(shape, classes)
    assert run_checks(model_checks(model, shape, classes)) == [
        "build_model_returns_module",
        "model_has_parameters",
        "forward_output_shape",
    ]


MODULE_ERRORS = [
    (
        {"HPARAMS": VALID},
        "check defines_build_model failed: the module must define a function build_model()",
    ),
    (
        {"build_model": nn.Linear(2, 2).weight, "HPARAMS": VALID},
        "check defines_build_model failed: the module must define a function build_model()",
    ),
    (
        {"build_model": 3, "HPARAMS": VALID},
        "check defines_build_model failed: the module must define a function build_model()",
    ),
    (
        {"build_model": build_linear},
        "check defines_hparams failed: the module must define a dict HPARAMS",
    ),
    (
        {"build_model": build_linear, "HPARAMS": list(VALID.items())},
        "check defines_hparams failed: the module must define a dict HPARAMS",
    ),
    (
        {"build_model": build_linear, "HPARAMS": {"epochs": 3, "batch_size": 8}},
        "check hparams_valid failed: HPARAMS is missing 'lr'",
    ),
    (
        {"build_model": build_linear, "HPARAMS": {**VALID, "epochs": 11}},
        "check hparams_valid failed: HPARAMS['epochs'] must be an integer from 1 to 10, not 11",
    ),
    (
        {"build_model": build_linear, "HPARAMS": VALID, "train": "my loop"},
        "check train_is_callable failed: the module must define a function train()",
    ),
]


@pytest.mark.parametrize(
    ("attributes", "message"),
    MODULE_ERRORS,
    ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(MODULE_ERRORS)],
)
def test_module_check_failures(attributes: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError) as info:
        run_checks(module_checks(fake_module(**attributes), 10))
    assert str(info.value) == message


def test_checks_stop_at_the_first_failure() -> None:
    seen = []

    def checks():  # type: ignore[no-untyped-def]
        yield "first", lambda: seen.append("first")
        yield "second", lambda: (_ for _ in ()).throw(ContractError("nope"))
        yield "third", lambda: seen.append("third")

    with pytest.raises(ContractError, match=r"^check second failed: nope$"):
        run_checks(checks())
    assert seen == ["first"]


def test_other_exceptions_are_not_disguised_as_contract_errors() -> None:
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        run_checks(iter([("boom", boom)]))


# --- model checks ---------------------------------------------------------------------------


class Raising(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom")


class ReturnsTuple(nn.Linear):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        out = super().forward(x)
        return out, out


def frozen() -> nn.Module:
    model = nn.Linear(4, 6)
    model.requires_grad_(False)
    return model


MODEL_ERRORS = [
    (
        lambda: build_linear,
        "check build_model_returns_module failed: build_model must return a "
        "torch.nn.Module, not function",
    ),
    (
        lambda: None,
        "check build_model_returns_module failed: build_model must return a "
        "torch.nn.Module, not NoneType",
    ),
    (lambda: nn.ReLU(), "check model_has_parameters failed: the model has no trainable parameters"),
    (
        lambda: nn.Sequential(),
        "check model_has_parameters failed: the model has no trainable parameters",
    ),
    (frozen, "check model_has_parameters failed: the model has no trainable parameters"),
    (
        lambda: nn.Linear(4, 5),
        "check forward_output_shape failed: model returned (2, 5) for a "
        "batch of 2, expected (2, 6)",
    ),
    (
        lambda: nn.Sequential(nn.Linear(4, 6), nn.Flatten(0)),
        "check forward_output_shape failed: model returned (12,) for a batch of 2, expected (2, 6)",
    ),
    (
        lambda: ReturnsTuple(4, 6),
        "check forward_output_shape failed: model returned tuple for a batch of 2, expected (2, 6)",
    ),
    (
        Raising,
        "check forward_output_shape failed: forward on a batch of shape (2, 4) raised "
        "ValueError: boom",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"),
    MODEL_ERRORS,
    ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(MODEL_ERRORS)],
)
def test_model_check_failures(make: Any, message: str) -> None:
    with pytest.raises(ContractError) as info:
        run_checks(model_checks(make(), (4,), 6))
    assert str(info.value) == message


def test_forward_shape_error_from_torch_names_the_batch_shape() -> None:
    with pytest.raises(ContractError) as info:
        run_checks(model_checks(nn.Linear(3, 6), (4,), 6))
    assert str(info.value).startswith(
        "check forward_output_shape failed: forward on a batch of "
        "shape (2, 4) raised RuntimeError: "
    )


@pytest.mark.parametrize("training", [True, False])
def test_forward_check_runs_in_eval_mode_and_restores_the_mode(training: bool) -> None:
    seen = []

    class Spy(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((self.training, torch.is_grad_enabled(), tuple(x.shape)))
            return super().forward(x)

    model = Spy(4, 6).train(training)
    run_checks(model_checks(model, (4,), 6))
    assert seen == [(False, False, (2, 4))]
    assert model.training is training
