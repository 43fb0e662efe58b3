"""The epoch callback a custom `train()` may ask for, so its report shows training curves too.

A submission opts in by naming a parameter `report_epoch`:

    def train(model, train_set, hparams, report_epoch):
        for epoch in range(hparams["epochs"]):
            ...
            report_epoch(loss=epoch_loss, accuracy=epoch_accuracy)

Three-argument `train(model, train_set, hparams)` functions are called exactly as before. What
the callback records is the student's own account, for their report only: the grader never
ranks or scores with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from grader.protocol import MAX_HISTORY, EpochRecord

CALLBACK = "report_epoch"
_PASSABLE = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class EpochLog:
    """Appends one EpochRecord per call, numbered from 1; calls past MAX_HISTORY are dropped."""

    def __init__(self, history: list[EpochRecord], on_epoch: Callable[[int], None]) -> None:
        self.history = history
        self._on_epoch = on_epoch

    def __call__(
        self,
        loss: Any = None,
        accuracy: Any = None,
        val_accuracy: Any = None,
        lr: Any = None,
    ) -> None:
        if len(self.history) >= MAX_HISTORY:
            return
        self.history.append(
            EpochRecord(
                epoch=len(self.history) + 1,
                loss=_number("loss", loss),
                accuracy=_number("accuracy", accuracy),
                val_accuracy=_number("val_accuracy", val_accuracy),
                lr=_number("lr", lr),
            )
        )
        self._on_epoch(len(self.history))


def callback_for(
    train: Callable[..., Any], history: list[EpochRecord], on_epoch: Callable[[int], None]
) -> dict[str, EpochLog]:
    """The keyword arguments to call train with: the callback if its signature names it."""
    try:
        parameter = inspect.signature(train).parameters.get(CALLBACK)
    except (TypeError, ValueError):  # a builtin or an odd callable: call it as before
        return {}
    if parameter is None or parameter.kind not in _PASSABLE:
        return {}
    return {CALLBACK: EpochLog(history, on_epoch)}


def _number(name: str, value: Any) -> float | None:
    """A Python, NumPy or one-element tensor number as a float. NaN and infinity pass through:
    the report shows them as values that were not finite."""
    if value is None:
        return None
    if isinstance(value, bool | str | bytes):
        raise TypeError(f"{CALLBACK}({name}=...) takes a number, not {type(value).__name__}")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"{CALLBACK}({name}=...) takes a number, not {type(value).__name__}"
        ) from None
    return number
