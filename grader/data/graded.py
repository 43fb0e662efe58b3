"""What one spec grades on: its dataset as students train on it, and its private hold-out.

The spec's [holdout] names the sources (core/spec.py); this resolves them on this machine. A
source the spec asks for and the machine lacks (QMNIST's files) is a note to say, not an error:
that spec is then graded without it, and every row and board says which hold-out it had.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from grader.core.spec import Spec
from grader.data import qmnist
from grader.data.cache import PreparedData
from grader.data.holdout import HoldoutData, carve, combine, load_holdout


@dataclass(frozen=True)
class GradingData:
    data: PreparedData  # what students train on (less any carved hold-out), keyed by both
    holdout: HoldoutData | None
    notes: tuple[str, ...] = ()  # one line per source asked for and missing here

    @property
    def holdout_said(self) -> str:
        """One line for terminals: which hold-out this spec is graded against, if any."""
        if self.holdout is None:
            return "no private hold-out: a memorised test set can go unnoticed"
        return f"private hold-out: {self.holdout.description}"


def for_spec(spec: Spec, data: PreparedData, data_dir: Path, cache_dir: Path) -> GradingData:
    """data is the spec's prepared dataset; cache_dir holds a carved entry (the shared folder
    under Slurm, so nodes read it)."""
    sources, notes = [], []
    wanted, dataset = spec.holdout, spec.assignment.dataset
    if wanted.folder:
        sources.append(load_holdout(dataset, wanted.path(spec.path)))
    if wanted.uses_qmnist(dataset):
        if qmnist.present(data_dir):
            sources.append(qmnist.load(data_dir))
        else:
            notes.append(qmnist.absent_note(data_dir))
    if wanted.from_training:
        data, carved = carve(data, wanted.from_training, wanted.seed, cache_dir)
        sources.append(carved)
    holdout = combine(sources)
    if holdout is not None:
        # A new hold-out regrades every row, as new data would.
        both = hashlib.sha256(f"{data.checksum}+{holdout.checksum}".encode()).hexdigest()
        data = replace(data, checksum=both)
    return GradingData(data, holdout, tuple(notes))
