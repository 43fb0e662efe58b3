"""The leaderboard as pictures: where each graded submission sits against the targets, and how
the class's test accuracies spread (a histogram with the targets drawn).

Reference rows (baselines) are drawn apart, as grey diamonds. Submissions at the same point
share one label, and a label is placed only where it covers no other label or point (else it
is left off, and the axis says how many were). Pictures are PNG bytes without a timestamp, so
the same board always gives the same file.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from grader.core.files import atomic_path
from grader.core.results import STUDENT, Status
from grader.core.spec import Spec
from grader.core.text import printable

# matplotlib is imported where a picture is drawn, not with this module: a run's reports draw
# on their own thread while the first jobs train, so its import (a quarter of a second) need not
# hold up the run's start.
if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

PNG_METADATA = {"Software": None}  # no version stamp: same board, same bytes
COLORS = ["tab:green", "tab:blue", "tab:orange", "tab:purple"]  # one per target, in spec order
PANEL = (6.4, 5.2)  # inches: one assignment's picture
# Inches around each panel's axes (left, right, top, bottom): the bottom holds the axis label
# and the legend, which sit below the axes so they never hide a submission. Fixed, so labels
# are placed where they will be drawn (tight_layout would move the axes afterwards).
PAD = (0.75, 0.25, 0.45, 1.45)
# Where a label may go, around its point (offset in points, alignment), in order of preference.
OFFSETS = [
    ((5, 3), "left", "bottom"),
    ((5, -3), "left", "top"),
    ((-5, 3), "right", "bottom"),
    ((-5, -3), "right", "top"),
    ((0, 7), "center", "bottom"),
    ((0, -7), "center", "top"),
    ((8, 12), "left", "bottom"),
    ((8, -12), "left", "top"),
    ((-8, 12), "right", "bottom"),
    ((-8, -12), "right", "top"),
]
NAMES_PER_LINE = 3
MOST_NAMES = 6  # a point shared by more shows how many, not who (the table says who)


def plot_leaderboard(board: pd.DataFrame, specs: Mapping[str, Spec], path: Path) -> None:
    """Per assignment, side by side: test accuracy against train-test gap with the target
    regions shaded, and below it the histogram of test accuracy."""
    names = sorted(set(board["assignment"])) or [""]  # an empty board: one empty panel
    figure, margins = _grid(2, len(names))
    for i, name in enumerate(names):
        rows, spec = board[board["assignment"] == name], specs.get(name)
        _panel(figure.axes[i], rows, name, spec)
        _histogram(figure.axes[len(names) + i], rows, name, spec)
    with atomic_path(path) as temp:
        temp.write_bytes(png_bytes(figure, margins=margins))


def assignment_png(board: pd.DataFrame, name: str, spec: Spec | None) -> bytes:
    """One assignment's accuracy-against-gap panel on its own, for the HTML page."""
    figure, margins = _grid(1, 1)
    _panel(figure.axes[0], board[board["assignment"] == name], name, spec)
    return png_bytes(figure, margins=margins)


def histogram_png(board: pd.DataFrame, name: str, spec: Spec | None) -> bytes:
    """One assignment's histogram of test accuracy on its own, for the HTML page."""
    figure, margins = _grid(1, 1)
    _histogram(figure.axes[0], board[board["assignment"] == name], name, spec)
    return png_bytes(figure, margins=margins)


def new_figure(width: float, height: float, panels: int, rows: int = 1) -> Figure:
    """A figure with rows x `panels` axes, drawn without a display (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)  # a renderer to measure labels with before drawing
    for i in range(rows * panels):
        figure.add_subplot(rows, panels, i + 1)
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


def _grid(rows: int, columns: int) -> tuple[Figure, dict[str, float]]:
    """A figure of rows x columns panels of PANEL's size with PAD around each axes, laid out
    now: labels are placed against the axes where they will be drawn."""
    (width, height), (left, right, top, bottom) = PANEL, PAD
    inner_w, inner_h = width - left - right, height - top - bottom
    figure = new_figure(width * columns, height * rows, columns, rows)
    margins = {
        "left": left / (width * columns),
        "right": 1 - right / (width * columns),
        "top": 1 - top / (height * rows),
        "bottom": bottom / (height * rows),
        "wspace": (left + right) / inner_w,
        "hspace": (top + bottom) / inner_h,
    }
    figure.subplots_adjust(**margins)
    return figure, margins


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
    _limits(axis, graded)
    left_off = _label(axis, graded)
    failed = int(((rows["status"] != Status.OK) & (rows["kind"] == STUDENT)).sum())
    title = spec.assignment.title if spec else name or "no results yet"
    axis.set_title(f"{title}: {len(students)} ranked, {failed} not ranked", fontsize=10)
    axis.set_xlabel("train - test gap (points)" + _left_off_note(left_off))
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3)
    if spec is not None and (spec.targets or len(references)):
        below = -0.23 if left_off else -0.17  # under the axis label's second line
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, below), fontsize=7)


def _histogram(axis: Axes, rows: pd.DataFrame, name: str, spec: Spec | None) -> None:
    """How the graded students' test accuracies spread, each target's threshold and the median
    drawn as lines (the median as the board's summary states it)."""
    graded = rows[(rows["status"] == Status.OK) & (rows["kind"] == STUDENT)]
    fractions = [float(a) for a in graded["test_accuracy"].dropna()]
    accuracies = [a * 100 for a in fractions]
    thresholds = [t.min_test_accuracy * 100 for t in spec.targets] if spec else []
    edges = _bin_edges([*accuracies, *thresholds] or [95.0])
    axis.hist(_below_edges(accuracies), bins=list(edges), color="0.35", edgecolor="white", zorder=3)
    for color, target in zip(COLORS, spec.targets if spec else (), strict=False):
        axis.axvline(
            target.min_test_accuracy * 100,
            color=color,
            linestyle="--",
            linewidth=1.5,
            zorder=4,  # over the bars
            label=f"target {target.name}: {target.description}",
        )
    if fractions:  # computed and rounded as the summary's median is, so the two read the same
        median = statistics.median(fractions) * 100
        axis.axvline(median, color="black", linestyle=":", zorder=4, label=f"median {median:.2f}%")
    title = spec.assignment.title if spec else name or "no results yet"
    students = f"{len(accuracies)} ranked student{'' if len(accuracies) == 1 else 's'}"
    axis.set_title(f"{title}: test accuracy of {students}", fontsize=10)
    axis.set_xlim(edges[0], edges[-1])
    axis.set_xlabel(f"test accuracy (%), in bins of {edges[1] - edges[0]:g} points")
    axis.set_ylabel("students")
    from matplotlib.ticker import MaxNLocator

    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3, axis="y")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=7)


def _bin_edges(values: list[float]) -> np.ndarray:
    """Round-width bins (0.1 to 10 points) covering the values, at most about 30 of them, and
    one empty bin to the right so the best score is not drawn against the frame."""
    low, high = min(values), max(values)
    width = next((w for w in (0.1, 0.2, 0.25, 0.5, 1, 2, 5) if (high - low) / w <= 28), 10.0)
    first = np.ceil(low / width - 1e-9) - 1  # low lies in the first bin, (start, start + width]
    last = np.ceil(high / width - 1e-9) + 1
    return np.round(width * np.arange(first, last + 1), 6)


def _below_edges(values: list[float]) -> list[float]:
    """Values nudged down by far less than any difference the board shows: numpy's bins hold
    their lower edge, these hold their upper one, as a target's "above" does (a score equal
    to a threshold is drawn below its line, as it does not meet it)."""
    return [v - 1e-9 for v in values]


def _label(axis: Axes, graded: pd.DataFrame) -> int:
    """Label each point (one label for the submissions that share it) where the label covers
    no other label or point and stays inside the axes; returns how many were left off."""
    renderer = axis.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    points = _points(graded)
    if points:
        _room_right(axis, renderer, max(points, key=lambda p: p[0]))
    taken = [_marker_box(axis, x, y) for x, y, _, _ in points]
    frame = axis.get_window_extent(renderer)
    left_off = 0
    for x, y, text, color in points:
        box = _place(axis, renderer, (x, y), text, color, (frame, taken))
        if box is None:
            left_off += 1
        else:
            taken.append(box)
    return left_off


def _room_right(axis: Axes, renderer: RendererBase, point: tuple[float, float, str, str]) -> None:
    """Widen the x axis until the rightmost point's label fits on its right, where nothing
    else can be."""
    x, _, text, _ = point
    probe = axis.text(0, 0, text, fontsize=8)
    width = probe.get_window_extent(renderer).width + 8 * axis.figure.dpi / 72  # and its offset
    probe.remove()
    low, high = axis.get_xlim()
    frame = axis.get_window_extent(renderer).width
    if width < frame / 2:  # else the label is left to find room elsewhere
        # (high' - x) / (high' - low) * frame >= width, solved for high'
        axis.set_xlim(low, max(high, (x * frame - width * low) / (frame - width)))


def _points(graded: pd.DataFrame) -> list[tuple[float, float, str, str]]:
    """(gap, test accuracy, label, colour) per distinct point, highest first; students and
    references apart (a reference's label is grey)."""
    keyed = graded.assign(
        _x=(graded["gap"] * 100).round(2),
        _y=(graded["test_accuracy"] * 100).round(2),
        _student=graded["kind"] == STUDENT,
    )
    points = []
    for key, group in keyed.groupby(["_x", "_y", "_student"], sort=False):
        x, y, student = cast(tuple[float, float, bool], key)
        names = [printable(str(s)) for s in group["student"]]  # a folder's name is the student's
        points.append((float(x), float(y), _names(names), "black" if student else "grey"))
    return sorted(points, key=lambda p: (-p[1], p[0], p[2]))


def _names(names: list[str]) -> str:
    if len(names) > MOST_NAMES:
        return f"{len(names)} submissions"
    lines = [names[i : i + NAMES_PER_LINE] for i in range(0, len(names), NAMES_PER_LINE)]
    return ",\n".join(", ".join(line) for line in lines)


def _place(
    axis: Axes,
    renderer: RendererBase,
    point: tuple[float, float],
    text: str,
    color: str,
    where: tuple[Bbox, list[Bbox]],
) -> Bbox | None:
    """The first offset at which the label fits (see _label), drawn there; None if none."""
    frame, taken = where
    for offset, ha, va in OFFSETS:
        label = axis.annotate(
            text,
            point,
            textcoords="offset points",
            xytext=offset,
            ha=ha,
            va=va,
            fontsize=8,
            color=color,
            parse_math=False,  # a pseudonym's "$" is text, not TeX
        )
        box = label.get_window_extent(renderer).padded(1)
        if _within(box, frame) and not any(box.overlaps(other) for other in taken):
            return box
        label.remove()
    return None


def _within(box: Bbox, frame: Bbox) -> bool:
    return bool(
        frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    )


def _marker_box(axis: Axes, x: float, y: float) -> Bbox:
    """The display box a point's marker covers: scatter's default marker is 6 points across (a
    diamond a little more); half a point to spare."""
    from matplotlib.transforms import Bbox

    cx, cy = axis.transData.transform((x, y))
    radius = 3.5 * axis.figure.dpi / 72
    return Bbox.from_extents(cx - radius, cy - radius, cx + radius, cy + radius)


def _left_off_note(left_off: int) -> str:
    if not left_off:
        return ""
    labels = "label" if left_off == 1 else "labels"
    return f"\n{left_off} {labels} left off where they would cover another; the table has every row"


def _shade_targets(axis: Axes, spec: Spec | None) -> None:
    if spec is None:
        return
    for color, target in zip(COLORS, spec.targets, strict=False):
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
    """Frame the submissions and the targets' corner, not the shaded regions' far edges, with
    room above the highest point for its label."""
    gaps = [*(rows["gap"] * 100), 0.0, 3.0]
    accuracies = [*(rows["test_accuracy"] * 100), 95.0]
    axis.set_xlim(min(gaps) - 0.5, max(gaps) + 0.8)
    axis.set_ylim(min(accuracies) - 0.5, max(100.2, max(accuracies) + 0.4))
