"""The submission contract, as a generator of small named checks (like scikit-learn's estimator
checks). They run inside the sandboxed child, against the imported student module."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import torch

from grader.child.epochs import CALLBACK

# HPARAMS has a module of its own; its names are part of the contract's.
from grader.child.hparams import (
    ContractError,
    HParams,
    hparam_warnings,
    parse_hparams,
    shown_own,
)

__all__ = [
    "ContractError",
    "HParams",
    "hparam_warnings",
    "model_checks",
    "module_checks",
    "parse_hparams",
    "run_checks",
    "shown_own",
]

Check = tuple[str, Callable[[], None]]


def module_checks(module: ModuleType, max_epochs: int) -> Iterator[Check]:
    """Checks that need only the module; a failure stops grading with status `invalid`."""
    yield "defines_build_model", lambda: _require_callable(module, "build_model")
    yield "defines_hparams", lambda: _require_dict(module, "HPARAMS")
    yield "hparams_valid", lambda: _require_hparams(module, max_epochs)
    if hasattr(module, "train"):
        yield "train_is_callable", lambda: _require_callable(module, "train")
        yield "train_signature", lambda: _require_train_signature(module.train)


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


def _require_hparams(module: ModuleType, max_epochs: int) -> None:
    parse_hparams(module.HPARAMS, max_epochs)


def _require_callable(module: ModuleType, name: str) -> None:
    if not callable(getattr(module, name, None)):
        raise ContractError(f"the module must define a function {name}()")


def _require_train_signature(train: Callable[..., Any]) -> None:
    """Tutorials name their per-epoch function `train` too (`train(model, loader, criterion,
    optimizer, epoch)`); the grader would call it with three arguments and the student would
    read a TypeError about arguments they never saw passed."""
    try:
        signature = inspect.signature(train)
    except (TypeError, ValueError):  # a builtin or an odd callable: the call itself will tell
        return
    try:
        # report_epoch, if named, is passed by keyword (grader.child.epochs)
        extra = {CALLBACK: None} if CALLBACK in signature.parameters else {}
        signature.bind(None, None, None, **extra)
    except TypeError:
        code = getattr(train, "__code__", None)
        where = f" on line {code.co_firstlineno}" if code is not None else ""
        raise ContractError(
            f"your train{signature}{where} is not the grader's train(model, train_set, "
            "hparams[, report_epoch]), which it calls to train your model; rename yours "
            "(e.g. train_epoch) and call it from a train(model, train_set, hparams)"
        ) from None


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
