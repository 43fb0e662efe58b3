"""The leaderboard's files in a results folder, always regenerated from every stored result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from grader.core.results import Result
from grader.core.spec import Spec
from grader.publish.export import write_csv
from grader.publish.plot import plot_leaderboard
from grader.publish.ranking import ranked, target_names

CSV_NAME = "leaderboard.csv"
PLOT_NAME = "leaderboard.png"


def write_leaderboard(
    results: Iterable[Result], specs: Mapping[str, Spec], out: Path
) -> pd.DataFrame:
    """OUT/leaderboard.csv and OUT/leaderboard.png; returns the ranked board."""
    board = ranked(results, target_names(specs))
    write_csv(board, out / CSV_NAME)
    plot_leaderboard(board, specs, out / PLOT_NAME)
    return board
