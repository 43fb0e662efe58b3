"""One grading context however a file is graded: `grader run`, `grader check` and a Slurm node's
rebuilt context grade alike, with the same reuse key, hold-out and reviewed rows."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import numpy as np
from support.grading import TEST_ENVIRONMENT
from support.layers import require_sandbox
from support.lookups import EXACT_LOOKUP, lookup_table
from support.runs import options

from grader import api
from grader.core.results import Status
from grader.core.spec import SpecsAsked, load_spec
from grader.data.cache import PreparedData
from grader.data.graded import GradingData
from grader.data.holdout import HoldoutData
from grader.jobs.context import Settings, make_context, portable
from grader.sandbox.box import Sandbox, SandboxOptions
from grader.store.sqlite import DB_NAME

CARVE = "\n[holdout]\nfrom_training = 0.25\n"


def test_check_and_run_key_a_row_alike_with_a_holdout(
    course: dict[str, Path], sandbox: Sandbox
) -> None:
    spec = course["assignments"] / "har.toml"
    spec.write_text(spec.read_text() + CARVE)
    summary = api.run(options(course), sandbox, lambda _: None)
    assert summary.graded == 3
    with sqlite3.connect(course["out"] / DB_NAME) as db:
        stored = db.execute(
            "SELECT data_checksum, spec_digest, holdout FROM attempts WHERE student = 'ana'"
        ).fetchone()
    checked = api.check_file(_check_options(course, "ana"), lambda _: None).result
    assert checked.status is Status.OK, checked.message
    assert (checked.data_checksum, checked.spec_digest, checked.holdout) == stored
    assert stored[2] == "30 training rows (25%, seed 0) kept from students"


def test_check_honours_the_courses_reviewed_rows(
    course: dict[str, Path], tiny_har: PreparedData
) -> None:
    test = [np.asarray(tiny_har.load(part)) for part in ("test_inputs", "test_labels")]
    source = course["submissions"] / "ana" / "har.py"
    source.write_text(EXACT_LOOKUP % repr(lookup_table(*test)))
    flagged = api.check_file(_check_options(course, "ana"), lambda _: None).result
    assert flagged.status is Status.FLAGGED
    (course["assignments"].parent / "reviewed.toml").write_text(
        f'[[reviewed]]\nstudent = "ana"\ncontent_hash = "{flagged.content_hash}"\n'
    )
    cleared = api.check_file(_check_options(course, "ana"), lambda _: None).result
    assert cleared.status is Status.OK and cleared.message.endswith("(reviewed)")


def test_a_slurm_nodes_context_is_the_heads_for_its_student(
    tiny_har: PreparedData, tmp_path: Path
) -> None:
    spec = load_spec(Path(__file__).parents[1] / "course" / "assignments" / "har.toml")
    holdout = HoldoutData(np.zeros((4, 561), np.float32), np.arange(4) % 6, "c" * 64, "rows")
    head = dataclasses.replace(
        make_context(spec, GradingData(tiny_har, holdout), TEST_ENVIRONMENT, Settings()),
        reviewed=frozenset({("ana", "1" * 64), ("ben", "2" * 64)}),
    )
    travelled = portable(head.for_seed(3), "ana", tmp_path / "holdout")
    assert travelled.context.holdout is None  # arrays stay out of the task's pickle
    node = travelled.restore(TEST_ENVIRONMENT)
    assert node.seed == 3 and node.spec == head.spec and node.data == head.data
    assert node.reviewed == frozenset({("ana", "1" * 64)})
    assert node.holdout is not None and node.holdout.checksum == holdout.checksum
    assert (node.holdout.labels == holdout.labels).all()


def test_each_seed_is_a_context_of_its_own_and_the_spec_is_untouched(
    tiny_har: PreparedData,
) -> None:
    spec = load_spec(Path(__file__).parents[1] / "course" / "assignments" / "har.toml")
    ctx = make_context(spec, GradingData(tiny_har, None), TEST_ENVIRONMENT, Settings(seeds=(4, 2)))
    assert ctx.seed == 4 and ctx.first_seed
    seeded = ctx.each_seed()
    assert [c.seed for c in seeded] == [4, 2] and not seeded[1].first_seed
    assert all(c.spec is spec for c in seeded)


def _check_options(course: dict[str, Path], student: str) -> api.CheckOptions:
    return api.CheckOptions(
        file=course["submissions"] / student / "har.py",
        data_dir=course["data"],
        cache_dir=course["cache"],
        specs=SpecsAsked(course["assignments"]),
        sandbox=SandboxOptions(require=require_sandbox()),
    )
