"""The phase's progress file: where the child is, for a job stopped at its limit to report.

The file is replaced whole at each step (write, then rename), so the grader reads either the
previous step or the new one, never half of one; a job killed mid-write leaves the previous.
"""

from __future__ import annotations

import os
from pathlib import Path

from grader.core.results import Stage
from grader.protocol import PROGRESS, Progress


class ProgressFile:
    def __init__(self, out_dir: Path) -> None:
        self._path = out_dir / PROGRESS
        self._progress = Progress(Stage.IMPORT)

    def stage(self, stage: Stage, epochs_asked: int | None = None) -> None:
        done = 0 if stage is Stage.TRAIN else None
        self._write(Progress(stage, done, epochs_asked))

    def epoch(self, done: int) -> None:
        """An epoch finished (the standard loop's, or one a custom train() reported)."""
        progress = self._progress
        self._write(Progress(progress.stage, done, progress.epochs_asked))

    def _write(self, progress: Progress) -> None:
        self._progress = progress
        partial = self._path.with_suffix(".partial")
        partial.write_text(progress.to_json())
        os.replace(partial, self._path)
