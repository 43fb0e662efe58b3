"""HPARAMS, the training vocabulary of the standard loop, parsed and validated.

Optimizers and schedulers are named as in `torch.optim` and `torch.optim.lr_scheduler`, in any
case, with keyword arguments that must be plain data (numbers, booleans, strings, lists of
numbers). Arguments are checked against the class's own signature and type hints here, before
any training time is spent; whatever the constructor itself then refuses is still `invalid`.
Every message names the HPARAMS key to fix.
"""

from __future__ import annotations

import collections.abc as abc
import difflib
import inspect
import math
import typing
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType, UnionType
from typing import Any, Literal, Union

import torch
from torch.optim import lr_scheduler

# Each loss and what the model's outputs must be for it.
LOSSES = {
    "cross_entropy": "on logits",
    "nll": "on log-probabilities, from a forward ending in log_softmax",
    "mse": "between softmax(outputs) and one-hot labels",
}
# The top-level keys the optimizer's constructor gets whenever it takes them.
OPTIMIZER_KEYS = ("lr", "weight_decay", "momentum")
# Schedules defined per optimizer step; all others step once per epoch.
PER_BATCH = frozenset({"onecyclelr", "cycliclr"})
MAX_VALIDATION_SPLIT = 0.5
REQUIRED = ("epochs", "batch_size", "lr")
# Students' own keys pass through to their train(); one that looks like a misspelt known key is
# warned about. Close spellings are found by difflib; these are names no spelling is close to.
SYNONYMS = {"learning_rate": "lr", "learningrate": "lr"}
CLOSE = 0.85  # difflib's ratio: epoch/epochs and batchsize/batch_size, not step_size/batch_size
SHOWN_VALUE_CHARS = 40

NOT_OFFERED = {
    "lbfgs": "it needs a closure that recomputes the loss; write your own train() for it",
    "sparseadam": "it needs sparse gradients (nn.Embedding(sparse=True)); use adam",
    "lambdalr": "it takes a Python function; write your own train() for it",
    "multiplicativelr": "it takes a Python function; write your own train() for it",
    "sequentiallr": "it chains other schedulers; write your own train() for it",
    "chainedscheduler": "it chains other schedulers; write your own train() for it",
}
IMPLEMENTATION = "the grader picks the implementation, the same for every submission"
GRADER_OWNED: dict[str, dict[str, str]] = {
    "optimizer": {
        "params": "the grader passes the model's parameters",
        "foreach": IMPLEMENTATION,
        "fused": IMPLEMENTATION,
        "capturable": IMPLEMENTATION,
        "differentiable": IMPLEMENTATION,
    },
    "scheduler": {
        "optimizer": "the grader passes the optimizer",
        "last_epoch": "a schedule always starts at the first epoch",
        "verbose": "the report already lists each epoch's learning rate",
    },
    "onecyclelr": {
        name: "the grader sets total_steps to epochs x batches per epoch"
        for name in ("total_steps", "epochs", "steps_per_epoch")
    },
    "reducelronplateau": {
        "mode": "the grader watches validation accuracy, so the mode is always 'max'",
    },
}


class ContractError(Exception):
    """The submission does not follow the contract: graded as status `invalid`."""


@dataclass(frozen=True)
class HParams:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "adam"  # a torch.optim class, lower case
    weight_decay: float = 0.0
    momentum: float = 0.0
    loss: str = "cross_entropy"
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    scheduler: str | None = None  # a torch.optim.lr_scheduler class, lower case
    scheduler_args: dict[str, Any] = field(default_factory=dict)
    validation_split: float = 0.0  # fraction of the training set held out
    early_stopping: int | None = None  # patience in epochs; needs a validation split


def parse_hparams(raw: Any, max_epochs: int) -> HParams:
    if not isinstance(raw, dict):
        raise ContractError("HPARAMS must be a dict")
    strange = [key for key in raw if not isinstance(key, str)]
    if strange:
        raise ContractError(f"HPARAMS keys must be strings, not {strange[0]!r}")
    for key in REQUIRED:
        if key not in raw:
            meant = [own for own in own_keys(raw) if misspelt(own) == key]
            hint = f" (is your {meant[0]!r} meant to be it?)" if meant else ""
            raise ContractError(f"HPARAMS is missing {key!r}{hint}")
    raw = {key: value for key, value in raw.items() if key in KNOWN}
    hp = HParams(**raw)
    _require_int("epochs", hp.epochs, 1, max_epochs)
    _require_int("batch_size", hp.batch_size, 1, 1_000_000)
    for key in OPTIMIZER_KEYS:
        _require_non_negative(key, getattr(hp, key))
    if not isinstance(hp.loss, str) or hp.loss not in LOSSES:
        choices = "; ".join(f"{name} ({meaning})" for name, meaning in LOSSES.items())
        raise ContractError(f"HPARAMS['loss'] must be one of {choices}; not {hp.loss!r}")
    optimizer = _class_name("optimizer", hp.optimizer, optimizers())
    optimizer_args = _arguments("optimizer_args", optimizers()[optimizer], hp.optimizer_args)
    for key in OPTIMIZER_KEYS:
        if key in raw and key in optimizer_args and optimizer_args[key] != raw[key]:
            raise ContractError(
                f"HPARAMS['optimizer_args'][{key!r}] = {optimizer_args[key]!r} contradicts "
                f"HPARAMS[{key!r}] = {raw[key]!r}; give it once"
            )
    scheduler, scheduler_args = _parse_scheduler(hp)
    _require_validation(hp, max_epochs, scheduler)
    return HParams(
        **{
            **raw,
            "optimizer": optimizer,
            "optimizer_args": optimizer_args,
            "scheduler": scheduler,
            "scheduler_args": scheduler_args,
        }
    )


KNOWN = frozenset(HParams.__dataclass_fields__)


def own_keys(raw: dict[str, Any]) -> list[str]:
    """The student's own HPARAMS keys: the grader's loop never reads them, their train() does."""
    return [key for key in raw if key not in KNOWN]


def shown_own(raw: dict[str, Any]) -> dict[str, str]:
    """The student's own keys with their values as written, shortened, for the report."""
    return {key: repr(raw[key])[:SHOWN_VALUE_CHARS] for key in own_keys(raw)}


def misspelt(key: str) -> str | None:
    """The known key this one looks like a misspelling of, if any."""
    lowered = key.lower()
    if lowered in SYNONYMS:
        return SYNONYMS[lowered]
    close = difflib.get_close_matches(lowered, sorted(KNOWN), n=1, cutoff=CLOSE)
    return close[0] if close else None


def hparam_warnings(raw: dict[str, Any]) -> list[str]:
    """One warning per own key that looks like a misspelt known one."""
    warnings = []
    for key in own_keys(raw):
        meant = misspelt(key)
        if meant is not None:
            warnings.append(
                f"HPARAMS[{key!r}] looks like a misspelling of {meant!r}: the grader reads "
                f"{meant!r} (your own keys reach your train() unchanged)"
            )
    return warnings


@cache
def optimizers() -> dict[str, type]:
    """Every optimizer class torch.optim exports, by lower-case name, but those NOT_OFFERED."""
    return _classes(torch.optim, torch.optim.Optimizer)


@cache
def schedulers() -> dict[str, type]:
    return _classes(lr_scheduler, lr_scheduler.LRScheduler)


def _classes(module: ModuleType, base: type) -> dict[str, type]:
    found = {}
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base:
            found[name.lower()] = obj
    return {name: cls for name, cls in found.items() if name not in NOT_OFFERED}


def _class_name(key: str, value: Any, offered: dict[str, type]) -> str:
    name = value.lower() if isinstance(value, str) else None
    if name in NOT_OFFERED:
        raise ContractError(f"HPARAMS[{key!r}] = {value!r} is not offered: {NOT_OFFERED[name]}")
    if name not in offered:
        where = "torch.optim" if key == "optimizer" else "torch.optim.lr_scheduler"
        raise ContractError(
            f"HPARAMS[{key!r}] must name a class in {where} ({', '.join(sorted(offered))}), "
            f"not {value!r}"
        )
    return name


def _parse_scheduler(hp: HParams) -> tuple[str | None, dict[str, Any]]:
    if hp.scheduler is None:
        if hp.scheduler_args != {}:
            raise ContractError("HPARAMS['scheduler_args'] needs HPARAMS['scheduler']")
        return None, {}
    name = _class_name("scheduler", hp.scheduler, schedulers())
    return name, _arguments("scheduler_args", schedulers()[name], hp.scheduler_args, name)


def _require_validation(hp: HParams, max_epochs: int, scheduler: str | None) -> None:
    split = hp.validation_split
    if (
        isinstance(split, bool)
        or not isinstance(split, int | float)
        or not 0 <= split <= MAX_VALIDATION_SPLIT
    ):
        raise ContractError(
            f"HPARAMS['validation_split'] must be a number from 0 to {MAX_VALIDATION_SPLIT} "
            f"(the fraction of the training set held out), not {split!r}"
        )
    if hp.early_stopping is not None:
        _require_int("early_stopping", hp.early_stopping, 1, max_epochs)
    for needs, key in ((hp.early_stopping is not None, "early_stopping"),
                       (scheduler == "reducelronplateau", "scheduler")):  # fmt: skip
        if needs and not split:
            raise ContractError(
                f"HPARAMS[{key!r}] watches validation accuracy: also set "
                "HPARAMS['validation_split'], e.g. 0.1"
            )


def _arguments(key: str, cls: type, args: Any, name: str = "") -> dict[str, Any]:
    """Keyword arguments for cls, checked against its signature; lists become tuples."""
    if not isinstance(args, dict):
        raise ContractError(f"HPARAMS[{key!r}] must be a dict, not {type(args).__name__}")
    params, hints = _signature(cls)
    owned = {**GRADER_OWNED[key.removesuffix("_args")], **GRADER_OWNED.get(name, {})}
    checked = {}
    for arg, value in args.items():
        where = f"HPARAMS[{key!r}][{arg!r}]"
        if arg in owned:
            raise ContractError(f"{where} is not allowed: {owned[arg]}")
        if arg not in params:
            known = ", ".join(sorted(p for p in params if p not in owned))
            raise ContractError(
                f"HPARAMS[{key!r}] has unknown argument {arg!r} for {qualname(cls)} "
                f"(known: {known})"
            )
        checked[arg] = _plain(where, value)
        if arg in hints and not _fits(checked[arg], hints[arg]):
            raise ContractError(
                f"{where} must be {_describe(hints[arg])} for {qualname(cls)}, not {value!r}"
            )
    for arg, param in params.items():
        if param.default is param.empty and arg not in checked and arg not in owned:
            raise ContractError(f"HPARAMS[{key!r}] must give {arg!r} for {qualname(cls)}")
    return checked


@cache
def _signature(cls: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """The constructor's keyword parameters (without the params/optimizer argument) and their
    resolved type hints; a hint that cannot be resolved is not checked."""
    params = list(inspect.signature(cls).parameters.values())[1:]
    keywords = {p.name: p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    # Some schedulers annotate with names imported for type checkers only.
    names = {"Callable": abc.Callable, "Iterable": abc.Iterable, "Sequence": abc.Sequence}
    try:
        hints = typing.get_type_hints(cls.__init__, localns=names)
    except Exception:
        hints = {}
    return keywords, {k: v for k, v in hints.items() if k in keywords}


def _plain(where: str, value: Any) -> Any:
    """A number, bool, string or None, or a list of numbers (as a tuple); finite numbers only."""
    if isinstance(value, list | tuple):
        if not all(_is_number(v) for v in value):
            raise ContractError(f"{where} must hold numbers only, not {value!r}")
        items = tuple(value)
    elif value is None or isinstance(value, bool | int | float | str):
        items = (value,)
    else:
        raise ContractError(
            f"{where} must be plain data (a number, true/false, a string or a list of "
            f"numbers), not {type(value).__name__}"
        )
    if any(isinstance(v, float) and not math.isfinite(v) for v in items):
        raise ContractError(f"{where} must be finite, not {value!r}")
    return items if isinstance(value, list | tuple) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fits(value: Any, hint: Any) -> bool:
    """Whether plain data fits a type hint. Tensors and functions are never plain data; a bool
    is not a number here, though Python says it is an int."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is Literal:
        return any(type(value) is type(arg) and value == arg for arg in args)
    if hint in (int, float):
        return _is_number(value) and (hint is float or isinstance(value, int))
    if hint in (bool, str):
        return isinstance(value, hint)
    if hint is type(None):
        return value is None
    if origin is tuple and isinstance(value, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(args) == len(value) and all(map(_fits, value, args))
    if origin in (list, abc.Iterable, abc.Sequence) and isinstance(value, tuple):
        return all(_fits(v, args[0]) for v in value) if args else True
    return False


def _describe(hint: Any) -> str:
    """A hint as a student reads it, leaving out what plain data cannot be (tensors)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, UnionType):
        parts = [_describe(a) for a in args if _describable(a)]
        return " or ".join(dict.fromkeys(parts))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} {_plural(args[0])}"
    if origin in (tuple, list, abc.Iterable, abc.Sequence):
        return f"a list of {_plural(args[0]) if args else 'numbers'}"
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return words.get(hint, "None" if hint is type(None) else str(hint))


def _plural(hint: Any) -> str:
    return "integers" if hint is int else "numbers"


def _describable(hint: Any) -> bool:
    return hint is not torch.Tensor and typing.get_origin(hint) is not abc.Callable


def qualname(cls: type) -> str:
    home = "torch.optim" if issubclass(cls, torch.optim.Optimizer) else "torch.optim.lr_scheduler"
    return f"{home}.{cls.__name__}"


def _require_int(key: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ContractError(
            f"HPARAMS[{key!r}] must be an integer from {low} to {high}, not {value!r}"
        )


def _require_non_negative(key: str, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ContractError(f"HPARAMS[{key!r}] must be a non-negative number, not {value!r}")
