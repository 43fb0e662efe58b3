"""Grading on several seeds: one Result per seed, combined into the row a board shows.

One seed decides pass or fail by luck for a model near a target (the HAR lesson's network
scored 91.2-95.4% over three seeds), so a spec may name several: the row shows the means, the
test accuracy's spread, and meets a target when the means do. It keeps each seed's own figures
beside them, and its confusion matrices are the seeds' summed, so a report's tables agree with
its headline.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from grader.core.results import Result, SeedFigures, Status
from grader.core.spec import Spec
from grader.jobs.scoring import targets_met

# A seed that ends so stops the submission's other seeds: the same code fails the same way.
STOPS_THE_SEEDS = frozenset({Status.ERROR, Status.INVALID, Status.TIMEOUT, Status.MEMORY})


def combine(results: list[Result], spec: Spec, not_graded: tuple[int, ...] = ()) -> Result:
    """The row of one submission graded on these seeds (results in the seeds' order): the
    first seed that failed or was flagged speaks for all; otherwise the means. not_graded: the
    seeds a failure stopped (STOPS_THE_SEEDS), which the message names."""
    seeds = [r.seed for r in results]
    for result in results:
        if result.status is not Status.OK:
            several = len(results) + len(not_graded) > 1
            message = f"seed {result.seed}: {result.message}" if several else result.message
            if not_graded:
                names = ", ".join(map(str, not_graded))
                message += f" (not graded on seed{'s' * (len(not_graded) > 1)} {names}: "
                message += "the same code fails the same way)"
            return replace(result, seeds=seeds, message=message)
    return _reproduced(_mean(results, spec), spec)


def _reproduced(row: Result, spec: Spec) -> Result:
    """--mode verify: submitted weights that score above what the code reproduces, by more
    than the seeds' spread allows, are irreproducible; the message gives both numbers."""
    if row.submitted_accuracy is None or row.test_accuracy is None:
        return row
    spread = row.test_accuracy_std or 0.0
    allowed = spec.audit.max_reproduction_gap + 2 * spread
    if row.submitted_accuracy - row.test_accuracy <= allowed:
        return row
    over = f" (± {100 * spread:.2f} over {len(row.seeds)} seeds)" if len(row.seeds) > 1 else ""
    return replace(
        row,
        status=Status.IRREPRODUCIBLE,
        targets={},
        message=f"the submitted weights score {100 * row.submitted_accuracy:.2f}% on the test "
        f"set; retraining the code reproduces {100 * row.test_accuracy:.2f}%{over} "
        f"(at most {100 * allowed:.1f} points less expected)",
    )


def _mean(results: list[Result], spec: Spec) -> Result:
    seeds = [r.seed for r in results]
    first = results[0]
    per_seed = [_figures(r) for r in results]
    if len(results) == 1:
        return replace(first, seeds=seeds, per_seed=per_seed)
    test = statistics.fmean(_known(r.test_accuracy) for r in results)
    train = statistics.fmean(_known(r.train_accuracy) for r in results)
    gap = train - test
    seconds = [r.train_seconds for r in results]
    return replace(
        first,
        test_accuracy=test,
        train_accuracy=train,
        gap=gap,
        test_accuracy_std=statistics.stdev(_known(r.test_accuracy) for r in results),
        targets=targets_met(spec.targets, test, gap),
        train_seconds=None if None in seconds else sum(s for s in seconds if s is not None),
        agreement=min(_known(r.agreement) for r in results),
        perturbed_drop=max(_known(r.perturbed_drop) for r in results),
        holdout_accuracy=_mean_or_none([r.holdout_accuracy for r in results]),
        submitted_accuracy=first.submitted_accuracy,
        seeds=seeds,
        per_seed=per_seed,
        test_predictions={k: v for r in results for k, v in r.test_predictions.items()},
        finished_at=max(r.finished_at for r in results),
        **_summed_classes(results),
    )


def _figures(result: Result) -> SeedFigures:
    return SeedFigures(
        seed=result.seed,
        test_accuracy=_known(result.test_accuracy),
        train_accuracy=_known(result.train_accuracy),
        gap=_known(result.gap),
        train_seconds=result.train_seconds,
        holdout_accuracy=result.holdout_accuracy,
        best_epoch=result.best_epoch,
    )


def _summed_classes(results: list[Result]) -> dict[str, Any]:
    """The seeds' confusion matrices added up per part, and each class's accuracy from the
    sums. Every seed predicts as many examples of each part, so the diagonal's share is the
    mean accuracy the row shows. A part some seed lacks is left out, never shown as one
    seed's."""
    confusion = {
        part: _sum([r.confusion[part] for r in results])
        for part in results[0].confusion
        if all(r.confusion.get(part) for r in results)
    }
    accuracy = {
        part: [row[c] / sum(row) if sum(row) else None for c, row in enumerate(matrix)]
        for part, matrix in confusion.items()
    }
    return {"confusion": confusion, "class_accuracy": accuracy}


def _sum(matrices: list[list[list[int]]]) -> list[list[int]]:
    return [
        [sum(cells) for cells in zip(*rows, strict=True)] for rows in zip(*matrices, strict=True)
    ]


def _known(value: float | None) -> float:
    assert value is not None, "a graded row has its accuracies and audit figures"
    return value


def _mean_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None
