"""The leaderboard as files: the CSV, always whole (written beside, then renamed into place).

Text cells can hold student-controlled text (rejected folder names, exception messages,
pseudonyms). A spreadsheet would run a cell starting with `=`, `+`, `-`, `@` (or a tab or
carriage return before one) as a formula, so such cells get a leading apostrophe, as OWASP
advises; numbers are left alone. Control and invisible characters show as "?".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from grader.core.files import atomic_path
from grader.core.text import visible

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temp:
        inert_cells(frame).to_csv(temp, index=False)


def inert_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells a spreadsheet will show as text, never evaluate."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(inert_cell)
    return safe


def inert_cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    # No terminal escapes for whoever cats the file, no override that reverses a cell's text.
    return visible(value)
