"""What a result means for the student, in plain words tied to what the course teaches.

Each finding names what the numbers show (its evidence, with the numbers) and what the course
suggests trying. Graded rows are read for overfitting, underfitting, a learning rate that is too
high, and accuracy that swings between epochs; failed rows for what failed and how to fix it.
The per-epoch history is the training child's own account, so it only ever adds advice; the
grader's measured accuracies decide everything else.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from grader.core.results import Result, Status
from grader.core.spec import Spec

DEFAULT_MAX_GAP = 0.02  # when no target bounds the gap
DEFAULT_MIN_TRAIN = 0.90  # when no target sets an accuracy
SWING = 0.02  # an epoch-to-epoch drop this large, late in training, is a swing
RISE = 1.5  # a final loss this many times its lowest has risen
DASH = "\N{EN DASH}"


@dataclass(frozen=True)
class Finding:
    kind: str  # a stable name: overfitting, underfitting, learning_rate_too_high, ...
    title: str
    evidence: str
    advice: tuple[str, ...] = ()


def diagnose(result: Result, spec: Spec | None) -> list[Finding]:
    if not result.ok:
        return [_failure(result)]
    findings = [
        *_learning_rate(result.history),
        *_fit(result, spec),
        *_swinging(result.history),
    ]
    return findings or [_on_track(result, spec)]


def _fit(result: Result, spec: Spec | None) -> list[Finding]:
    train, test, gap = result.train_accuracy, result.test_accuracy, result.gap
    if train is None or test is None or gap is None:
        return []
    targets = spec.targets if spec else ()
    gaps = [t.max_gap for t in targets if t.max_gap is not None]
    max_gap = min(gaps) if gaps else DEFAULT_MAX_GAP
    minima = [t.min_test_accuracy for t in targets if t.min_test_accuracy > 0]
    min_train = min(minima) if minima else DEFAULT_MIN_TRAIN
    findings = []
    if gap >= max_gap:
        findings.append(
            Finding(
                "overfitting",
                "Overfitting: a large train-test gap",
                f"Train accuracy {_pct(train)} against test accuracy {_pct(test)}: a gap of "
                f"{gap * 100:.2f} points, where the targets want less than "
                f"{max_gap * 100:g}. The model learns its training examples better than it "
                "generalises.",
                (
                    "add dropout (or raise its rate)",
                    "add weight decay (HPARAMS['weight_decay'], e.g. 1e-4 to 1e-2)",
                    "use fewer parameters: narrower or fewer layers",
                    "train for fewer epochs",
                ),
            )
        )
    if train < min_train:
        findings.append(
            Finding(
                "underfitting",
                "Underfitting: low training accuracy",
                f"Even on its own training data the model reaches only {_pct(train)}, below "
                f"the {_pct(min_train)} the targets ask of the test set. It has not learned "
                "enough yet.",
                (
                    "train for more epochs",
                    "raise the learning rate (HPARAMS['lr'])",
                    "use a bigger model: wider or more layers",
                ),
            )
        )
    return findings


def _learning_rate(history: list[dict[str, Any]]) -> list[Finding]:
    losses = [(r.get("epoch"), r.get("loss")) for r in history if isinstance(r, dict)]
    finite = [(e, float(v)) for e, v in losses if isinstance(v, int | float) and _finite(v)]
    if not finite:
        return []
    advice = (
        "lower the learning rate (HPARAMS['lr']), e.g. by a factor of 3 to 10",
        "with SGD, lower the momentum or add a learning-rate warm-up",
    )
    first_finite = next(i for i, (_, v) in enumerate(losses) if _finite(v))
    broken = [e for e, v in losses[first_finite:] if not _finite(v)]
    if broken:
        return [
            Finding(
                "learning_rate_too_high",
                "The loss blew up (NaN or infinite)",
                f"The training loss stopped being a finite number at epoch {broken[0]}: the "
                "updates were so large that the weights overflowed. That is the classic sign "
                "of a learning rate that is too high.",
                advice,
            )
        ]
    values = [v for _, v in finite]
    lowest = min(values)
    if len(values) >= 3 and (values[-1] > values[0] or values[-1] > RISE * lowest):
        return [
            Finding(
                "learning_rate_too_high",
                "The loss rose during training",
                f"The training loss went from {values[0]:.4g} (epoch {finite[0][0]}) down to "
                f"{lowest:.4g} at best, but ended at {values[-1]:.4g}: the optimiser overshoots. "
                "A rising loss usually means the learning rate is too high.",
                advice,
            )
        ]
    return []


def _swinging(history: list[dict[str, Any]]) -> list[Finding]:
    """Accuracy that drops sharply between epochs in the second half of training."""
    for key, what in (("val_accuracy", "validation"), ("accuracy", "training")):
        series = [
            (r["epoch"], r[key])
            for r in history
            if isinstance(r, dict) and _finite(r.get(key)) and isinstance(r.get("epoch"), int)
        ]
        if len(series) < 4:
            continue
        late = series[len(series) // 2 - 1 :]
        drops = [(b[0], a[1] - b[1]) for a, b in itertools.pairwise(late)]
        epoch, worst = max(drops, key=lambda d: d[1])
        if worst < SWING:
            return []
        return [
            Finding(
                "unstable",
                "Accuracy swings between epochs",
                f"Late in training the {what} accuracy fell by {worst * 100:.1f} points in one "
                f"epoch (at epoch {epoch}). With a constant learning rate the weights keep "
                "jumping around a good solution, so the final score depends on luck.",
                (
                    "decay the learning rate: HPARAMS['scheduler'] = 'steplr' (or "
                    "'cosineannealinglr') with HPARAMS['scheduler_args']",
                    "use a larger batch (HPARAMS['batch_size']) for less noisy steps",
                ),
            )
        ]
    return []


def _on_track(result: Result, spec: Spec | None) -> Finding:
    targets = spec.targets if spec else ()
    met = [t.name for t in targets if result.targets.get(t.name)]
    if targets and len(met) == len(targets):
        return Finding(
            "on_track",
            "Every target met",
            f"Test accuracy {_pct(result.test_accuracy)} with a gap of "
            f"{(result.gap or 0) * 100:.2f} points: nothing stands out to fix.",
            ("try a model with fewer parameters: the leaderboard breaks ties on them",),
        )
    return Finding(
        "on_track",
        "No single problem stands out",
        f"Test accuracy {_pct(result.test_accuracy)}, train accuracy "
        f"{_pct(result.train_accuracy)}: neither a large gap nor low training accuracy.",
        (
            "small changes may close the last points: a learning-rate schedule "
            "(HPARAMS['scheduler']), or a slightly larger model with dropout",
        ),
    )


_CHECK_ADVICE = {
    "defines_build_model": "define build_model(input_shape, num_classes) at the top level",
    "defines_hparams": "define HPARAMS as a dict at the top level",
    "hparams_valid": "fix HPARAMS as the message says (see the handout for the keys)",
    "train_is_callable": "train must be a function train(model, train_set, hparams)",
    "build_model_returns_module": "build_model must return a torch.nn.Module",
    "model_has_parameters": "the model needs trainable parameters",
    "forward_output_shape": "use input_shape and num_classes instead of hard-coded sizes, and "
    "return one row of class scores per input",
}
_STATUS_ADVICE = {
    Status.ERROR: (
        "Your code raised an exception",
        "run the command below on your machine: it shows the same error and the line",
    ),
    Status.TIMEOUT: (
        "Training ran past the time budget",
        "train for fewer epochs, use a smaller model or a larger batch",
    ),
    Status.MEMORY: (
        "The job ran out of memory",
        "use a smaller batch size or a smaller model; do not keep copies of the data",
    ),
    Status.CRASHED: (
        "The job died without reporting a result",
        "run the command below: a crash in native code (a segfault) or calling os._exit "
        "ends the process this way",
    ),
    Status.NONDETERMINISTIC: (
        "Training twice gave different weights",
        "do not seed from the clock or use nondeterministic operations: the grader seeds "
        "everything for you",
    ),
    Status.FLAGGED: (
        "The integrity audit held this result for review",
        "nothing is decided yet: the section on the integrity audit says what was measured; "
        "an instructor reads the code and clears it if it learned honestly",
    ),
    Status.SANDBOX: (
        "The grader stopped this job before it ran",
        "nothing to fix in your code: a safety layer was missing, and it is graded again on "
        "the next run",
    ),
}


# A timeout's advice by where the job was (protocol.Stage's words); training's is the default.
_TIMEOUT_ADVICE = {
    "importing the submission": "code at the top level of your file runs when it is imported: "
    'keep only definitions there, and put experiments under `if __name__ == "__main__":`',
    "building the model": "build_model never returned: look for a loop that does not end in "
    "build_model or in your model's __init__",
    "loading the weights": "loading your weights took too long: submit a state_dict saved "
    "with torch.save(model.state_dict(), ...) or safetensors",
    "predicting": "predicting took too long: forward should do a fixed amount of work per "
    "input; look for a loop in forward that depends on the data",
}


def _failure(result: Result) -> Finding:
    message = result.message
    if result.status is Status.INVALID:
        check = re.search(r"check (\w+) failed", message)
        advice = (
            [_CHECK_ADVICE[check.group(1)]] if check and check.group(1) in _CHECK_ADVICE else []
        )
        if "NaN" in message or "not finite" in message:
            advice.append(
                "outputs that are not finite usually mean the learning rate is too "
                "high: lower HPARAMS['lr']"
            )
        return Finding(
            "invalid",
            "The submission breaks the contract",
            f"The grader stopped at: {message}",
            tuple(advice or ["compare your file with the starter and the handout's contract"]),
        )
    title, hint = _STATUS_ADVICE.get(result.status, ("Grading failed", "see the message"))
    if result.status is Status.TIMEOUT and result.stage in _TIMEOUT_ADVICE:
        title, hint = "The job ran past the time budget", _TIMEOUT_ADVICE[result.stage]
    return Finding(str(result.status), title, message, (hint,))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.2f}%"
