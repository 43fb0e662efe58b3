"""The leaderboard as a picture: where each graded submission sits against the targets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes

from grader.core.files import atomic_path
from grader.core.results import Status
from grader.core.spec import Spec


def plot_leaderboard(board: pd.DataFrame, specs: Mapping[str, Spec], path: Path) -> None:
    """One panel per assignment: test accuracy against train-test gap, target regions shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graded = board[board["status"] == Status.OK]
    names = sorted(set(board["assignment"]))
    figure, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 5.2), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        rows = graded[graded["assignment"] == name]
        _shade_targets(axis, specs.get(name))
        axis.scatter(rows["gap"] * 100, rows["test_accuracy"] * 100, color="black", zorder=3)
        for _, row in rows.iterrows():
            axis.annotate(
                row["student"],
                (row["gap"] * 100, row["test_accuracy"] * 100),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
        _limits(axis, rows)
        failed = int((board["assignment"] == name).sum() - len(rows))
        spec = specs.get(name)
        title = spec.assignment.title if spec else name
        axis.set_title(f"{title}: {len(rows)} graded, {failed} failed")
        axis.set_xlabel("train - test gap (points)")
        axis.set_ylabel("test accuracy (%)")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    try:
        with atomic_path(path) as temp:
            figure.savefig(temp, dpi=100, format="png")
    finally:
        plt.close(figure)


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
    # Below the axes, so it never hides a submission.
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize=7)


def _limits(axis: Axes, rows: pd.DataFrame) -> None:
    """Frame the submissions and the targets' corner, not the shaded regions' far edges."""
    gaps = [*(rows["gap"] * 100), 0.0, 3.0]
    accuracies = [*(rows["test_accuracy"] * 100), 95.0]
    axis.set_xlim(min(gaps) - 0.5, max(gaps) + 0.5)
    axis.set_ylim(min(accuracies) - 0.5, 100.2)
