"""Where the repository is, and the course's real assignment specs in it."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = REPO / "course" / "assignments"
