"""The specs' copy-detection thresholds against what bench/calibrate_similarity.py measured on
the course's honest code and models and on planted copies (course/lessons/experiments/
similarity.json): no honest pair reaches a verdict, every planted copy does."""

from __future__ import annotations

import json

import pytest
from support.course import SPECS
from support.paths import REPO

MEASURED = json.loads((REPO / "course/lessons/experiments/similarity.json").read_text())
ASSIGNMENTS = sorted(MEASURED["assignments"])
HONEST = ("honest_code", "same_model_other_seeds", "other_files_same_seed")


def test_every_assignment_was_calibrated() -> None:
    assert sorted(SPECS) == ASSIGNMENTS


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_spec_uses_the_thresholds_it_was_calibrated_with(name: str) -> None:
    limits = SPECS[name].similarity
    assert MEASURED["assignments"][name]["thresholds"] == {
        "min_code_similarity": limits.min_code_similarity,
        "min_overlap": limits.min_overlap,
        "min_error_consistency": limits.min_error_consistency,
    }


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_no_honest_pair_reaches_a_verdict(name: str) -> None:
    measured = MEASURED["assignments"][name]
    assert measured["summary"]["honest_pairs_with_a_verdict"] == 0
    limits = SPECS[name].similarity
    for pair in measured["honest_code"]:  # the most alike, by name
        alike = pair["code_similarity"] >= limits.min_code_similarity
        assert not (alike and pair["overlap"] >= limits.min_overlap), pair
    for kind in HONEST[1:]:
        for pair in measured[kind]:
            assert pair["verdict"] == "none", pair
    most = measured["summary"]["same_model_other_seeds"]["max"]
    assert most < limits.min_error_consistency  # one architecture on other seeds: no reference


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_planted_copy_is_found(name: str) -> None:
    planted = MEASURED["assignments"][name]["planted"]
    assert {p["kind"] for p in planted} == {"renamed", "reordered", "hparams"}
    for pair in planted:
        assert pair["verdict"] != "none", pair


def test_the_instructor_guide_quotes_the_calibration() -> None:
    guide = (REPO / "course/handouts/instructor.md").read_text()
    section = guide.split("## Copy detection")[1].split("\n## ")[0]
    har, mnist = MEASURED["assignments"]["har"], MEASURED["assignments"]["mnist"]
    quoted = [
        f"{har['summary']['same_model_other_seeds']['max']:.2f}",
        f"{har['summary']['other_files_same_seed']['max']:.2f}",
        f"{mnist['summary']['same_model_other_seeds']['max']:.2f}",
        f"({har['summary']['honest_code']['pairs']} pairs)",
        f"({mnist['summary']['honest_code']['pairs']} pairs)",
        f"more than {har['summary']['honest_code_overlap']['max']} characters",
    ]
    for figure in quoted:
        assert figure in section, figure
    limits = SPECS["har"].similarity
    assert f"{100 * limits.min_code_similarity:.0f}% or more" in section
    assert f"at least {limits.min_overlap} characters" in section
    assert f"threshold, {limits.min_error_consistency:.2f}," in section
