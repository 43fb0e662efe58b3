"""Grades back to Canvas through its API (the `canvas` extra): `grader canvas-push`."""

from __future__ import annotations

from grader.adapters.canvas import PushOptions, PushReport, push


def canvas_push(options: PushOptions) -> PushReport:
    """Compare a gradebook import file's scores with the assignment's in Canvas and, unless a
    dry run, send those that differ (canvasapi is imported only then: it is an extra)."""
    return push(options)


__all__ = ["PushOptions", "PushReport", "canvas_push"]
