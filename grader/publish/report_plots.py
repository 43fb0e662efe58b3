"""The pictures of a student's report, as PNG bytes: training curves, and per-class results.

Drawn with matplotlib's Agg canvas on figures of their own (no pyplot state), so reports can be
rendered from several threads; labels are plain text, never TeX.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from grader.core.results import Result
from grader.core.spec import Spec
from grader.publish.plot import new_figure, png_bytes

# Laid out once by eye for these figures (see png_bytes): room for rotated class names.
TRAINING_MARGINS = {"left": 0.07, "right": 0.98, "bottom": 0.13, "top": 0.91, "wspace": 0.18}
CLASSES_MARGINS = {"left": 0.06, "right": 0.98, "bottom": 0.27, "top": 0.92, "wspace": 0.3}


def seeds_text(seeds: list[int]) -> str:
    """How reports and pictures name the seeds figures come from: "seed 0", "seeds 0, 1, 2"."""
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def training_png(result: Result) -> bytes | None:
    """Loss and accuracy per epoch as the training child reported them, with the grader's
    own train and test accuracy as dashed lines; None without a per-epoch record. A row graded
    on several seeds has its first seed's record: the titles say so, and the dashed lines are
    that seed's own figures where the row keeps them."""
    records = [r for r in result.history if isinstance(r, dict) and isinstance(r.get("epoch"), int)]
    if not records:
        return None
    figure = new_figure(10, 3.8, 2)
    loss_axis, accuracy_axis = figure.axes
    epochs = [r["epoch"] for r in records]
    losses = [_value(r.get("loss")) for r in records]
    loss_axis.plot(epochs, losses, marker="o", markersize=3, color="tab:red", label="training loss")
    started = next((i for i, v in enumerate(losses) if not math.isnan(v)), len(losses))
    broken = [e for e, v in zip(epochs[started:], losses[started:], strict=True) if math.isnan(v)]
    if broken:
        for epoch in broken:
            loss_axis.axvline(epoch, color="tab:red", alpha=0.3, linestyle=":")
        loss_axis.text(0.02, 0.95, f"not a finite number from epoch {broken[0]}",
                       transform=loss_axis.transAxes, va="top", color="tab:red", fontsize=8,
                       parse_math=False)  # fmt: skip
    loss_axis.set_title(_seed_title(result, "Training loss per epoch"))
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("mean loss")
    loss_axis.grid(alpha=0.3)
    for key, label, color in (
        ("accuracy", "training batches, during the epoch", "tab:blue"),
        ("val_accuracy", "validation split", "tab:purple"),
    ):
        values = [_fraction(r.get(key)) * 100 for r in records]
        if _any_finite(values):
            accuracy_axis.plot(epochs, values, marker="o", markersize=3, color=color, label=label)
    for value, label, color in _graded_lines(result):
        if value is not None:
            accuracy_axis.axhline(
                value * 100, linestyle="--", color=color, label=f"{label}, {value * 100:.2f}%"
            )
    if result.best_epoch is not None:
        accuracy_axis.axvline(result.best_epoch, color="grey", linestyle=":", label="kept epoch")
    accuracy_axis.set_title(_seed_title(result, "Accuracy (%)"))
    accuracy_axis.set_xlabel("epoch")
    accuracy_axis.grid(alpha=0.3)
    accuracy_axis.legend(fontsize=7, loc="lower right")
    from matplotlib.ticker import MaxNLocator  # imported when drawing: see plot.py

    for axis in figure.axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return png_bytes(figure, margins=TRAINING_MARGINS)


def classes_png(result: Result, spec: Spec | None) -> bytes | None:
    """Per-class accuracy on the train and test sets, and the test set's confusion matrix."""
    test = result.confusion.get("test") if isinstance(result.confusion, dict) else None
    if not test:
        return None
    matrix = np.asarray(test, dtype=float)
    classes = matrix.shape[0]
    names = [_short(spec.assignment.class_label(i) if spec else str(i)) for i in range(classes)]
    figure = new_figure(11, 4.6, 2)
    bars, heat = figure.axes
    positions = np.arange(classes)
    for offset, part, color in ((-0.2, "train", "tab:blue"), (0.2, "test", "tab:green")):
        values = _per_class(result, part, classes)
        bars.bar(positions + offset, values, width=0.4, color=color, label=f"{part} set")
    bars.set_xticks(positions, names, rotation=30 if max(map(len, names)) > 3 else 0,
                    ha="right" if max(map(len, names)) > 3 else "center")  # fmt: skip
    lowest = min((v for v in _per_class(result, "test", classes) if not math.isnan(v)), default=0)
    bars.set_ylim(max(0.0, math.floor(lowest / 10) * 10 - 5), 100.5)
    bars.set_ylabel("accuracy (%)")
    counted = _counted(result)
    bars.set_title("Accuracy per class" + (f" ({counted})" if counted else ""))
    bars.grid(axis="y", alpha=0.3)
    bars.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    heat.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), value in np.ndenumerate(matrix):
        if value:
            heat.text(column, row, f"{int(value)}", ha="center", va="center", fontsize=7,
                      color="white" if shares[row, column] > 0.6 else "black")  # fmt: skip
    heat.set_xticks(positions, names, rotation=45 if max(map(len, names)) > 3 else 0,
                    ha="right" if max(map(len, names)) > 3 else "center", fontsize=8)  # fmt: skip
    heat.set_yticks(positions, names, fontsize=8)
    heat.set_xlabel("predicted class")
    heat.set_ylabel("true class")
    if counted:  # in a smaller font: at the title's size it runs past the figure's edge
        heat.set_title(f"Test set: confusion matrix (counts, {counted})", fontsize=9)
    else:
        heat.set_title("Test set: confusion matrix (counts)")
    for label in [*bars.get_xticklabels(), *heat.get_xticklabels(), *heat.get_yticklabels()]:
        label.set_parse_math(False)
    return png_bytes(figure, margins=CLASSES_MARGINS)


def _counted(result: Result) -> str:
    """Which seeds a row of several seeds counts per class: all, summed (seeds.py: each seed
    predicted every example once), or an older row's first seed alone; "" for one seed."""
    if len(result.graded_seeds) == 1:
        return ""
    summed = len(result.class_seeds) > 1
    return seeds_text(result.class_seeds) + (" summed" if summed else "")


def _seed_title(result: Result, title: str) -> str:
    """A title naming the seed the curves are from, when the row has several."""
    if len(result.graded_seeds) == 1:
        return title
    return f"Seed {result.seed}: {title[0].lower()}{title[1:]}"


def _graded_lines(result: Result) -> list[tuple[float | None, str, str]]:
    """The graded accuracies drawn over the curves: the curves' own seed's where the row keeps
    each seed's figures, else the row's (its one seed's, or the mean of an older row's)."""
    train, test, label = result.train_accuracy, result.test_accuracy, "graded"
    if len(result.graded_seeds) > 1:
        own = [s for s in result.per_seed if s["seed"] == result.seed]
        if own:
            train, test = own[0]["train_accuracy"], own[0]["test_accuracy"]
            label = f"seed {result.seed} graded"
        else:
            label = f"mean of {seeds_text(result.graded_seeds)}"
    return [
        (train, f"{label}: train set", "tab:blue"),
        (test, f"{label}: test set", "tab:green"),
    ]


def _short(name: str, limit: int = 14) -> str:
    """A class name that fits the fixed margins (the report's table has it in full)."""
    return name if len(name) <= limit else name[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _per_class(result: Result, part: str, classes: int) -> list[float]:
    values: Any = (
        result.class_accuracy.get(part) if isinstance(result.class_accuracy, dict) else None
    )
    if not isinstance(values, list) or len(values) != classes:
        return [math.nan] * classes
    return [_value(v) * 100 for v in values]


def _value(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else math.nan


def _fraction(value: Any) -> float:
    """An accuracy as reported: a custom train() may claim anything, so only [0, 1] is drawn."""
    number = _value(value)
    return number if 0.0 <= number <= 1.0 else math.nan


def _any_finite(values: list[float]) -> bool:
    return any(not math.isnan(v) for v in values)
