"""What the benchmarks share: ways run in turn (A B A B ...) so drift hits each alike, and
figures printed as medians with their spread, plus per-round ratios."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping


def interleaved(
    ways: Mapping[str, Callable[[], float]], rounds: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Each way's figures over `rounds` counted rounds, after one warm-up round unless not."""
    figures: dict[str, list[float]] = {name: [] for name in ways}
    for round_number in range(rounds + warmup):
        for name, way in ways.items():
            figure = way()
            if round_number >= warmup:
                figures[name].append(figure)
    return figures


def spread(values: list[float], unit: str = "s") -> str:
    return (
        f"median {statistics.median(values):8.3f} {unit}  "
        f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
    )


def ratio(figures: Mapping[str, list[float]], a: str, b: str) -> str:
    pairs = [x / y for x, y in zip(figures[a], figures[b], strict=True)]
    return (
        f"{a} / {b}: median {statistics.median(pairs):.3f} "
        f"(min {min(pairs):.3f}, max {max(pairs):.3f})"
    )
