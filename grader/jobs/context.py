"""How a submission is graded: the one context every way of grading makes (a batch run, `grader
check`, Gradescope) through make_context, and the portable form a Slurm node rebuilds it from.

A context grades with one seed, an explicit field: several seeds are several contexts
(for_seed), one per job, combined into one row by seeds.combine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.core.results import Environment, Mode
from grader.core.review import load_reviewed, reviewed_path
from grader.core.spec import Spec
from grader.data.cache import PreparedData
from grader.data.graded import GradingData
from grader.data.holdout import HoldoutData, StagedHoldout, stage


@dataclass(frozen=True)
class Settings:
    """What the person grading chose (a run's or a check's options), the same for every spec."""

    mode: Mode = Mode.RETRAIN
    timeout_seconds: float | None = None  # per phase; None: the spec's budget
    weights_dir: Path | None = None  # where the graded weights are kept: <assignment>/<student>
    verify_determinism: bool = False
    seeds: tuple[int, ...] = ()  # --seeds; empty: each spec's


@dataclass(frozen=True)
class GradingContext:
    """How to grade one submission with one seed: plain data, so it can travel."""

    spec: Spec
    data: PreparedData  # what students train on (less any carved hold-out)
    environment: Environment
    seed: int  # this job's seed: one of all_seeds
    settings: Settings = field(default_factory=Settings)
    holdout: HoldoutData | None = None  # the spec's private hold-out, if it has one here
    # (student, content hash) of rows an instructor reviewed: the audit flags them no more.
    reviewed: frozenset[tuple[str, str]] = frozenset()

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """Every seed the row is graded on, in order."""
        return self.settings.seeds or self.spec.grading.all_seeds

    @property
    def first_seed(self) -> bool:
        """The seed whose weights the row keeps and names."""
        return self.seed == self.all_seeds[0]

    def for_seed(self, seed: int) -> GradingContext:
        return replace(self, seed=seed)

    def each_seed(self) -> list[GradingContext]:
        """One context per seed the row is graded on: the one seed loop's order."""
        return [self.for_seed(seed) for seed in self.all_seeds]


def make_context(
    spec: Spec, graded: GradingData, environment: Environment, settings: Settings
) -> GradingContext:
    """The context for a spec on this machine, on its first seed. Rows reviewed in
    course/reviewed.toml (beside the specs' folder) are honoured wherever it grades."""
    return GradingContext(
        spec=spec,
        data=graded.data,
        environment=environment,
        seed=(settings.seeds or spec.grading.all_seeds)[0],
        settings=settings,
        holdout=graded.holdout,
        reviewed=load_reviewed(reviewed_path(spec.path.parent)),
    )


@dataclass(frozen=True)
class PortableContext:
    """A context as it travels to another machine (a Slurm node): its hold-out staged as a
    file in a folder both see, where its arrays would bloat every task's pickle."""

    context: GradingContext  # without its hold-out
    holdout: StagedHoldout | None

    def restore(self, environment: Environment) -> GradingContext:
        """The context again, with the environment of the machine it arrived on."""
        holdout = None if self.holdout is None else self.holdout.load()
        return replace(self.context, environment=environment, holdout=holdout)


def portable(ctx: GradingContext, student: str, shared: Path) -> PortableContext:
    """ctx for one student's task: only that student's reviewed rows travel with it."""
    mine = frozenset(row for row in ctx.reviewed if row[0] == student)
    staged = None if ctx.holdout is None else stage(ctx.holdout, shared)
    return PortableContext(replace(ctx, holdout=None, reviewed=mine), staged)
