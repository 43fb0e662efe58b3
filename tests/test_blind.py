"""Scores a submission cannot steer (issue 17): counts the grader makes itself, one blind
evaluation, and an audit that knows a model's own noise. Tiny data throughout."""

from __future__ import annotations

from support.grading import GOOD_HAR, TINY_TEST, TINY_TRAIN, GradeSource
from support.mistakes import DROPOUT_AT_EVAL

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


# Reports what its evaluation job was given, as the error message the row then carries.
LOOKS_AROUND = (
    GOOD_HAR
    + """
import os
import numpy as np

_here = os.path.dirname(os.path.abspath(__file__))
_names = sorted(os.listdir(_here))
if any(name.startswith("weights.") for name in _names):
    _arrays = [n for n in _names if n.endswith(".npy")]
    _shapes = {n: np.load(os.path.join(_here, n)).shape for n in _arrays}
    raise RuntimeError(f"saw {_names} {_shapes}")
"""
)

# The gap-gaming attack of issue 17: swap the top two classes on every row equal to a training
# row, found through the training inputs the evaluation job used to get in a file of their own.
GAP_GAMER = """
import os

import numpy as np
import torch

HPARAMS = {"epochs": 2, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}
_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_inputs.npy")
SEEN = {row.tobytes() for row in np.load(_path)} if os.path.exists(_path) else set()


class Gamer(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(features, 16), torch.nn.ReLU(),
                                       torch.nn.Linear(16, classes))

    def forward(self, x):
        out = self.net(x)
        if self.training or not SEEN:
            return out
        out = out.clone()
        for i, row in enumerate(x):
            if row.numpy().tobytes() in SEEN:
                top = out[i].topk(2).indices
                out[i, top[0]], out[i, top[1]] = out[i, top[1]].item(), out[i, top[0]].item()
        return out


def build_model(input_shape, num_classes):
    return Gamer(input_shape[0], num_classes)
"""


def test_the_eval_job_gets_one_blind_array_and_no_training_file(
    grade_source: GradeSource,
) -> None:
    result = grade_source(LOOKS_AROUND)
    assert result.status is Status.ERROR
    # The training sample (all 120 rows), the test rows, their changed copies, and the test rows
    # again to measure self-agreement (all 60 of so few): no hold-out in this spec.
    blind = TINY_TRAIN + 3 * TINY_TEST
    assert f"'inputs.npy': ({blind}, 561)" in result.message, result.message
    assert "train_inputs" not in result.message and "labels" not in result.message


def test_swapping_classes_on_training_rows_no_longer_moves_the_gap(
    grade_source: GradeSource,
) -> None:
    honest = grade_source(GOOD_HAR, student="honest")
    gamer = grade_source(GAP_GAMER, student="gamer")
    assert gamer.status is Status.OK, gamer.message
    assert (gamer.test_accuracy, gamer.train_accuracy, gamer.gap) == (
        honest.test_accuracy,
        honest.train_accuracy,
        honest.gap,
    )


def test_a_model_noisy_at_evaluation_is_told_why_not_flagged(grade_source: GradeSource) -> None:
    result = grade_source(DROPOUT_AT_EVAL)
    assert result.status is Status.OK, result.message
    assert "predictions are not deterministic at evaluation" in result.message
    assert "F.dropout without training=self.training" in result.message
    assert result.agreement is not None and result.agreement < 0.99
    again = grade_source(DROPOUT_AT_EVAL, student="again")  # noisy, yet reproducible
    assert (again.test_accuracy, again.agreement) == (result.test_accuracy, result.agreement)


def test_a_deterministic_model_gets_no_noise_note(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR)
    assert (result.status, result.message) == (Status.OK, "")
