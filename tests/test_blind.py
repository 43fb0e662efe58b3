"""Scores a submission cannot steer (issue 17): counts the grader makes itself, one blind
evaluation, and an audit that knows a model's own noise. Tiny data throughout."""

from __future__ import annotations

from conftest import GOOD_HAR, GradeSource

from grader.core.results import Mode, Status

# Writes a one-parameter model.safetensors wherever the job saves after loading weights: only
# the eval phase loads any, so training saves honestly and evaluation forges the count.
FORGED_COUNT = (
    GOOD_HAR
    + """
import safetensors.torch as _st

_load, _save, _loaded = _st.load_file, _st.save_file, []


def _load_file(*args, **kwargs):
    _loaded.append(True)
    return _load(*args, **kwargs)


def _save_file(tensors, path, *args, **kwargs):
    if _loaded:
        tensors = {"w": torch.ones(1)}
    return _save(tensors, path, *args, **kwargs)


_st.load_file, _st.save_file = _load_file, _save_file
"""
)
HONEST_PARAMS = 561 * 16 + 16 + 16 * 6 + 6


def test_a_count_forged_at_evaluation_is_not_believed(grade_source: GradeSource) -> None:
    honest = grade_source(GOOD_HAR, student="honest")
    forged = grade_source(FORGED_COUNT, student="forger")
    assert honest.status is Status.OK and forged.status is Status.OK, forged.message
    assert forged.params == honest.params == HONEST_PARAMS
    assert forged.test_accuracy == honest.test_accuracy


def test_submitted_safetensors_are_counted_as_sanitized(grade_source: GradeSource) -> None:
    import torch
    from safetensors.torch import save

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(561, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6))
    weights = save({k: v.contiguous() for k, v in model.state_dict().items()})
    result = grade_source(FORGED_COUNT, mode=Mode.LOAD, weights=weights)
    assert result.status is Status.OK, result.message
    assert result.params == HONEST_PARAMS


def test_a_pickle_has_no_count_rather_than_the_students_word(grade_source: GradeSource) -> None:
    import io

    import torch

    model = torch.nn.Sequential(torch.nn.Linear(561, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    result = grade_source(
        FORGED_COUNT, mode=Mode.LOAD, weights=buffer.getvalue(), weights_suffix=".pt"
    )
    assert result.status is Status.OK, result.message
    assert result.params is None
