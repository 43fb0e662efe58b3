"""The leaderboard as a terminal table: the columns a TA scans, messages cut short."""

from __future__ import annotations

import pandas as pd

from grader.core.text import printable

MESSAGE_CHARS = 60


def table_text(board: pd.DataFrame) -> str:
    if board.empty:
        return "no results"
    targets = [c for c in board.columns if c.startswith("target_")]
    shown = ["rank", "student", "assignment", "status", "test_accuracy", "gap", *targets, "message"]
    table = board[shown].copy()
    for column in ("student", "message"):  # a rejected folder's name is the student's text
        table[column] = table[column].fillna("").map(lambda text: printable(str(text)))
    table["message"] = table["message"].str.slice(0, MESSAGE_CHARS)
    return str(table.to_string(index=False, na_rep=""))
