"""The submission contract, as a generator of small named checks (like scikit-learn's estimator
checks). They run inside the sandboxed child, against the imported student module."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = ("cross_entropy", "nll")


class ContractError(Exception):
    """The submission does not follow the contract: graded as status `invalid`."""


@dataclass(frozen=True)
class HParams:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.0
    loss: str = "cross_entropy"


Check = tuple[str, Callable[[], None]]


def module_checks(module: ModuleType, max_epochs: int) -> Iterator[Check]:
    """Checks that need only the module; a failure stops grading with status `invalid`."""
    yield "defines_build_model", lambda: _require_callable(module, "build_model")
    yield "defines_hparams", lambda: _require_dict(module, "HPARAMS")
    yield "hparams_valid", lambda: _require_hparams(module, max_epochs)
    if hasattr(module, "train"):
        yield "train_is_callable", lambda: _require_callable(module, "train")


def model_checks(model: Any, input_shape: tuple[int, ...], num_classes: int) -> Iterator[Check]:
    """Checks on the built model, run before any training time is spent."""
    yield "build_model_returns_module", lambda: _require_module(model)
    yield "model_has_parameters", lambda: _require_parameters(model)
    yield "forward_output_shape", lambda: _require_output_shape(model, input_shape, num_classes)


def run_checks(checks: Iterator[Check]) -> list[str]:
    """Run checks in order; the first failure raises ContractError naming the check."""
    passed = []
    for name, check in checks:
        try:
            check()
        except ContractError as exc:
            raise ContractError(f"check {name} failed: {exc}") from None
        passed.append(name)
    return passed


def parse_hparams(raw: Any, max_epochs: int) -> HParams:
    if not isinstance(raw, dict):
        raise ContractError("HPARAMS must be a dict")
    known = set(HParams.__dataclass_fields__)
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        raise ContractError(
            f"HPARAMS has unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    for key in ("epochs", "batch_size", "lr"):
        if key not in raw:
            raise ContractError(f"HPARAMS is missing {key!r}")
    hp = HParams(**raw)
    _require_int("epochs", hp.epochs, 1, max_epochs)
    _require_int("batch_size", hp.batch_size, 1, 1_000_000)
    for key in ("lr", "weight_decay", "momentum"):
        value = getattr(hp, key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ContractError(f"HPARAMS[{key!r}] must be a non-negative number, not {value!r}")
    if hp.optimizer not in OPTIMIZERS:
        raise ContractError(
            f"HPARAMS['optimizer'] must be one of {', '.join(OPTIMIZERS)}, not {hp.optimizer!r}"
        )
    if hp.loss not in LOSSES:
        raise ContractError(f"HPARAMS['loss'] must be one of {', '.join(LOSSES)}, not {hp.loss!r}")
    return hp


def _require_hparams(module: ModuleType, max_epochs: int) -> None:
    parse_hparams(module.HPARAMS, max_epochs)


def _require_int(key: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ContractError(
            f"HPARAMS[{key!r}] must be an integer from {low} to {high}, not {value!r}"
        )


def _require_callable(module: ModuleType, name: str) -> None:
    if not callable(getattr(module, name, None)):
        raise ContractError(f"the module must define a function {name}()")


def _require_dict(module: ModuleType, name: str) -> None:
    if not isinstance(getattr(module, name, None), dict):
        raise ContractError(f"the module must define a dict {name}")


def _require_module(model: Any) -> None:
    if not isinstance(model, torch.nn.Module):
        raise ContractError(
            f"build_model must return a torch.nn.Module, not {type(model).__name__}"
        )


def _require_parameters(model: torch.nn.Module) -> None:
    if not any(p.requires_grad for p in model.parameters()):
        raise ContractError("the model has no trainable parameters")


def _require_output_shape(
    model: torch.nn.Module, input_shape: tuple[int, ...], num_classes: int
) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros((2, *input_shape)))
    except Exception as exc:
        raise ContractError(
            f"forward on a batch of shape {(2, *input_shape)} raised {type(exc).__name__}: {exc}"
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ContractError(f"model returned {shape} for a batch of 2, expected (2, {num_classes})")
