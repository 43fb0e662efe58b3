"""The leaderboard as files: the CSV, always whole (written beside, then renamed into place)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from grader.core.files import atomic_path


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temp:
        frame.to_csv(temp, index=False)
