"""The leaderboard as a picture: where each graded submission sits against the targets.

Reference rows (baselines) are drawn apart, as grey diamonds. Pictures are PNG bytes without
a timestamp, so the same board always gives the same file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.axes import Axes

from grader.core.files import atomic_path
from grader.core.results import STUDENT, Status
from grader.core.spec import Spec
from grader.core.text import printable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PNG_METADATA = {"Software": None}  # no version stamp: same board, same bytes


def plot_leaderboard(board: pd.DataFrame, specs: Mapping[str, Spec], path: Path) -> None:
    """One panel per assignment: test accuracy against train-test gap, target regions shaded."""
    names = sorted(set(board["assignment"])) or [""]  # an empty board: one empty panel
    figure = new_figure(6 * len(names), 5.2, len(names))
    for axis, name in zip(figure.axes, names, strict=True):
        _panel(axis, board[board["assignment"] == name], name, specs.get(name))
    with atomic_path(path) as temp:
        temp.write_bytes(png_bytes(figure))


def assignment_png(board: pd.DataFrame, name: str, spec: Spec | None) -> bytes:
    """One assignment's panel on its own, for the HTML page."""
    figure = new_figure(6.4, 5.2, 1)
    _panel(figure.axes[0], board[board["assignment"] == name], name, spec)
    return png_bytes(figure)


def new_figure(width: float, height: float, panels: int) -> Figure:
    """A figure with `panels` axes side by side, drawn without a display (Agg)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    for i in range(panels):
        figure.add_subplot(1, panels, i + 1)
    return figure


def png_bytes(figure: Figure, dpi: int = 100, margins: dict[str, float] | None = None) -> bytes:
    """The figure as PNG. Fixed margins (subplots_adjust) where the caller knows its layout:
    tight_layout measures every label and costs about a third of a report's time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    if margins is None:
        figure.tight_layout()
    else:
        figure.subplots_adjust(**margins)
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, format="png", metadata=PNG_METADATA)
    return buffer.getvalue()


def _panel(axis: Axes, rows: pd.DataFrame, name: str, spec: Spec | None) -> None:
    graded = rows[rows["status"] == Status.OK]
    students, references = graded[graded["kind"] == STUDENT], graded[graded["kind"] != STUDENT]
    _shade_targets(axis, spec)
    axis.scatter(students["gap"] * 100, students["test_accuracy"] * 100, color="black", zorder=3)
    if len(references):
        axis.scatter(
            references["gap"] * 100,
            references["test_accuracy"] * 100,
            color="grey",
            marker="D",
            zorder=3,
            label="reference (not ranked)",
        )
    for _, row in graded.iterrows():
        axis.annotate(
            printable(str(row["student"])),  # a rejected folder's name is the student's
            (row["gap"] * 100, row["test_accuracy"] * 100),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
            color="black" if row["kind"] == STUDENT else "grey",
            parse_math=False,  # a pseudonym's "$" is text, not TeX
        )
    _limits(axis, graded)
    failed = int(((rows["status"] != Status.OK) & (rows["kind"] == STUDENT)).sum())
    title = spec.assignment.title if spec else name or "no results yet"
    axis.set_title(f"{title}: {len(students)} graded, {failed} failed")
    axis.set_xlabel("train - test gap (points)")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3)
    if spec is not None and (spec.targets or len(references)):
        # Below the axes, so it never hides a submission.
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=7)


def _shade_targets(axis: Axes, spec: Spec | None) -> None:
    if spec is None:
        return
    colors = ["tab:green", "tab:blue", "tab:orange", "tab:purple"]
    for color, target in zip(colors, spec.targets, strict=False):
        right = target.max_gap * 100 if target.max_gap is not None else 100
        axis.fill_between(
            [-100, right],
            target.min_test_accuracy * 100,
            100,
            color=color,
            alpha=0.12,
            label=f"target {target.name}: {target.description}",
        )


def _limits(axis: Axes, rows: pd.DataFrame) -> None:
    """Frame the submissions and the targets' corner, not the shaded regions' far edges."""
    gaps = [*(rows["gap"] * 100), 0.0, 3.0]
    accuracies = [*(rows["test_accuracy"] * 100), 95.0]
    axis.set_xlim(min(gaps) - 0.5, max(gaps) + 0.5)
    axis.set_ylim(min(accuracies) - 0.5, 100.2)
