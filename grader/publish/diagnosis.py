"""What a result means for the student, in plain words tied to what the course teaches.

Each finding names what the numbers show (its evidence, with the numbers), what the course
suggests trying, and the lesson that teaches it. A graded row is first read for mistakes in the
code that training numbers cannot reveal on their own: state train() fitted that the saved
state_dict lacks (the training child's own accuracy far above the evaluated model's), outputs
that are already probabilities, a loss that went negative, predictions that change on the same
input. Any of them is named alone, because until it is fixed the gap and the loss curve
describe the mistake, not the model. Otherwise the row is read for overfitting, underfitting, a
learning rate that is too high and accuracy that swings between epochs, with no advice that
another finding's advice contradicts.
Failed rows say what failed and how to fix it. The per-epoch history is the training child's own
account, so it only ever adds advice; the grader's measured accuracies decide everything else.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from grader.core.results import Result, Stage, Status
from grader.core.spec import Audit, Spec

DEFAULT_MAX_GAP = 0.02  # when no target bounds the gap
DEFAULT_MIN_TRAIN = 0.90  # when no target sets an accuracy
SWING = 0.02  # an epoch-to-epoch drop this large, late in training, is a swing
RISE = 1.5  # a final loss this many times its lowest has risen
# The training child's accuracy right after train() this far above the evaluated model's: what
# train() fitted did not travel with the state_dict.
STATE_LOST = 0.20
PROBABILITY_ROWS = 0.99  # this share of outputs already probabilities: the forward ends in softmax
DASH = "\N{EN DASH}"
LESSONS = "course/lessons/"  # where the lessons live in the course's folder

LOWER_LR = "lower the learning rate (HPARAMS['lr']), e.g. by a factor of 3 to 10"
RAISE_LR = "raise the learning rate (HPARAMS['lr'])"
ADD_DECAY = (
    "decay the learning rate: HPARAMS['scheduler'] = 'steplr' (or 'cosineannealinglr') with "
    "HPARAMS['scheduler_args']"
)
FEWER_EPOCHS, MORE_EPOCHS = "train for fewer epochs", "train for more epochs"
SMALLER = "use fewer parameters: narrower or fewer layers"
BIGGER = "use a bigger model: wider or more layers"
# Advice that undoes other advice; a finding earlier in PRIORITY keeps its side of each pair.
OPPOSITES = {
    frozenset((LOWER_LR, RAISE_LR)),
    frozenset((ADD_DECAY, RAISE_LR)),
    frozenset((FEWER_EPOCHS, MORE_EPOCHS)),
    frozenset((SMALLER, BIGGER)),
}
# Low training accuracy comes before the gap: the cures for a gap cost training accuracy.
PRIORITY = ("learning_rate_too_high", "underfitting", "unstable", "overfitting")
# What one example of a class is called, per dataset: 52 sitting windows predicted as standing.
UNITS = {"uci_har": "{true} windows", "mnist": "images of the digit {true}"}
UNIT = "examples of class {true}"


@dataclass(frozen=True)
class Finding:
    kind: str  # a stable name: overfitting, underfitting, learning_rate_too_high, ...
    title: str
    evidence: str
    advice: tuple[str, ...] = ()
    lesson: str = ""  # the lesson that teaches it: a page of course/lessons, with its anchor

    @property
    def lesson_link(self) -> str:
        """The lesson as a link relative to the course's folder; "" for none."""
        return LESSONS + self.lesson if self.lesson else ""


def diagnose(result: Result, spec: Spec | None) -> list[Finding]:
    if not result.ok:
        return [_failure(result)]
    findings = _mistakes(result, spec) or _consistent(
        [*_learning_rate(result.history), *_fit(result, spec), *_swinging(result)]
    )
    return _with_confusion(findings or [_on_track(result, spec)], result, spec)


def _mistakes(result: Result, spec: Spec | None) -> list[Finding]:
    """Mistakes in the code, named from what was measured; outputs that are probabilities
    explain a negative loss too (nll on probabilities is minus a probability)."""
    lost = _state_lost(result)
    if lost:
        return lost  # every other figure describes a fresh model, not the trained one
    outputs = _probabilities(result) or _negative_loss(result)
    return [*outputs, *_random_predictions(result, spec)]


def _state_lost(result: Result) -> list[Finding]:
    """Right after train() the model scored far better than the model the grader evaluated,
    which is build_model() with the saved state_dict loaded: train() kept something the
    state_dict does not hold (a plain tensor attribute, a fitted scaler or projection)."""
    trained, evaluated = result.trained_accuracy, result.train_accuracy
    if trained is None or evaluated is None or trained - evaluated <= STATE_LOST:
        return []
    return [
        Finding(
            "state_not_saved",
            "What train() fitted was not saved with the weights",
            f"Right after train() the model scored {_pct(trained)} on a sample of its training "
            f"data, but the model the grader evaluated scored {_pct(evaluated)} on the training "
            "data. The grader saves only the model's state_dict and evaluates a fresh "
            "build_model() with it loaded: anything train() kept in plain attributes (a mean "
            "and scale, a PCA projection, a tensor it fitted) is lost." + _FIX_FIRST,
            (
                "keep fitted tensors in buffers: self.register_buffer('mean', torch.zeros(n)) "
                "in __init__, then fill them in train() with self.mean.copy_(...)",
                "or compute them in build_model() from fixed numbers, never in train()",
            ),
        )
    ]


def _consistent(findings: list[Finding]) -> list[Finding]:
    """The findings with no advice that undoes advice kept by a finding earlier in PRIORITY."""
    given: set[str] = set()
    kept = {}
    for finding in sorted(findings, key=lambda f: PRIORITY.index(f.kind)):
        advice = tuple(
            a for a in finding.advice if not any(frozenset((a, g)) in OPPOSITES for g in given)
        )
        given.update(advice)
        kept[id(finding)] = replace(finding, advice=advice)
    return [kept[id(f)] for f in findings]


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
                    _more_decay(result.weight_decay),
                    SMALLER,
                    FEWER_EPOCHS,
                ),
                "overfitting.md",
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
                (MORE_EPOCHS, RAISE_LR, BIGGER),
                "overfitting.md",
            )
        )
    return findings


def _more_decay(weight_decay: float | None) -> str:
    """Weight decay to add, or to raise where training already used some."""
    if not weight_decay:
        return "add weight decay (HPARAMS['weight_decay'], e.g. 1e-4 to 1e-2)"
    return (
        f"raise the weight decay your HPARAMS['weight_decay'] = {weight_decay:g} sets "
        f"(e.g. to {weight_decay * 10:g})"
    )


def _learning_rate(history: list[dict[str, Any]]) -> list[Finding]:
    losses = [(r.get("epoch"), r.get("loss")) for r in history if isinstance(r, dict)]
    finite = [(e, float(v)) for e, v in losses if isinstance(v, int | float) and _finite(v)]
    if not finite:
        return []
    advice = (LOWER_LR, "with SGD, lower the momentum or add a learning-rate warm-up")
    lesson = "gradient-descent.md#the-learning-rate"
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
                lesson,
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
                lesson,
            )
        ]
    return []


def _swinging(result: Result) -> list[Finding]:
    """Accuracy that drops sharply between epochs in the second half of training."""
    for key, what in (("val_accuracy", "validation"), ("accuracy", "training")):
        series = [
            (r["epoch"], r[key])
            for r in result.history
            if isinstance(r, dict) and _finite(r.get(key)) and isinstance(r.get("epoch"), int)
        ]
        if len(series) < 4:
            continue
        late = series[len(series) // 2 - 1 :]
        drops = [(b[0], a[1] - b[1]) for a, b in itertools.pairwise(late)]
        epoch, worst = max(drops, key=lambda d: d[1])
        if worst < SWING:
            return []
        schedule = _schedule(result)
        why = (
            "The weights keep jumping around a good solution"
            if schedule
            else "With a constant learning rate the weights keep jumping around a good solution"
        )
        return [
            Finding(
                "unstable",
                "Accuracy swings between epochs",
                f"Late in training the {what} accuracy fell by {worst * 100:.1f} points in one "
                f"epoch (at epoch {epoch}). {why}, so the final score depends on luck.",
                (
                    schedule or ADD_DECAY,
                    "use a larger batch (HPARAMS['batch_size']) for less noisy steps",
                ),
                "gradient-descent.md#decay",
            )
        ]
    return []


def _schedule(result: Result) -> str:
    """Advice for a run that already has a learning-rate schedule (HPARAMS['scheduler'], or a
    learning rate that changed between epochs); "" for a run without one."""
    rates = [r["lr"] for r in result.history if isinstance(r, dict) and _finite(r.get("lr"))]
    changed = len(set(rates)) > 1
    if result.scheduler and rates and not changed:
        return (
            f"your HPARAMS['scheduler'] = '{result.scheduler}' left the learning rate at "
            f"{rates[0]:.3g} for all {len(rates)} epochs: set HPARAMS['scheduler_args'] so it "
            "decays within the run"
        )
    if result.scheduler or changed:
        name = f"HPARAMS['scheduler'] = '{result.scheduler}'" if result.scheduler else "schedule"
        span = f" (it went from {rates[0]:.3g} to {rates[-1]:.3g})" if changed else ""
        return (
            f"your learning rate already decays with your {name}{span}: decay it sooner or "
            "further (HPARAMS['scheduler_args']), so the last epochs take small steps"
        )
    return ""


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
    schedule = "" if _schedule(result) else "a learning-rate schedule (HPARAMS['scheduler']), or "
    return Finding(
        "on_track",
        "No single problem stands out",
        f"Test accuracy {_pct(result.test_accuracy)}, train accuracy "
        f"{_pct(result.train_accuracy)}: neither a large gap nor low training accuracy.",
        (
            f"small changes may close the last points: {schedule}a slightly larger model "
            "with dropout",
        ),
    )


_FIX_FIRST = (
    " Fix this first: until then the loss curve and the train-test gap describe this mistake, "
    "not your model."
)
_AGAIN = (
    "so the probabilities are squashed by softmax a second time: every score stays between 0 "
    "and 1, the gradients are small, and the model learns slowly or stalls."
)
_SOFTMAX_AGAIN = {
    "cross_entropy": "HPARAMS['loss'] = 'cross_entropy' applies log_softmax to the outputs "
    "itself, " + _AGAIN,
    "mse": "HPARAMS['loss'] = 'mse' applies softmax to the outputs itself, " + _AGAIN,
    "": "The loss in your train() most likely applies softmax itself (F.cross_entropy does), "
    + _AGAIN,
}
_NLL_ON_PROBABILITIES = (
    "HPARAMS['loss'] = 'nll' expects log-probabilities (a forward ending in F.log_softmax) and "
    "negates the right class's output: on probabilities that is minus a probability, never "
    "below -1, with far weaker gradients than a log-probability's."
)


def _probabilities(result: Result) -> list[Finding]:
    """A forward that ends in softmax: the loss then works on outputs it was not made for."""
    share = result.probability_outputs
    if share is None or share < PROBABILITY_ROWS:
        return []
    nll = result.loss == "nll"
    return [
        Finding(
            "softmax_outputs",
            "The model outputs probabilities, but nll expects log-probabilities"
            if nll
            else "The model outputs probabilities, and the loss applies softmax again",
            f"On {_pct(share)} of the inputs the grader evaluated, the model's outputs are "
            "non-negative and sum to 1: forward ends in softmax. "
            + (
                _NLL_ON_PROBABILITIES
                if nll
                else _SOFTMAX_AGAIN.get(result.loss, _SOFTMAX_AGAIN[""])
            )
            + _FIX_FIRST,
            (
                "end forward with the last linear layer (raw scores, logits) and use "
                "HPARAMS['loss'] = 'cross_entropy'",
                "or end forward with F.log_softmax(x, dim=1) and use HPARAMS['loss'] = 'nll'",
            ),
            "softmax-and-likelihood.md#how-pytorch-splits-the-work",
        )
    ]


def _negative_loss(result: Result) -> list[Finding]:
    """A classification loss is never negative; one that is does not fit the outputs."""
    losses = [
        (r["epoch"], float(r["loss"]))
        for r in result.history
        if isinstance(r, dict) and _finite(r.get("loss")) and isinstance(r.get("epoch"), int)
    ]
    below = [(epoch, loss) for epoch, loss in losses if loss < 0]
    if not below:
        return []
    why = (
        "With HPARAMS['loss'] = 'nll' on raw scores (logits), the loss is minus the right "
        "class's score"
        if result.loss == "nll"
        else "A loss on the wrong kind of output behaves this way: nll on raw scores (logits) "
        "is minus the right class's score"
    )
    return [
        Finding(
            "negative_loss",
            "The loss went negative: it does not fit the model's outputs",
            f"The mean training loss fell below zero at epoch {below[0][0]} and ended at "
            f"{losses[-1][1]:.4g} (epoch {losses[-1][0]}), yet cross-entropy and the negative "
            f"log-likelihood of log-probabilities are never below zero. {why}, and the "
            "optimiser lowers it without end by inflating scores instead of classifying."
            + _FIX_FIRST,
            (
                "keep the raw scores and use HPARAMS['loss'] = 'cross_entropy'",
                "or end forward with F.log_softmax(x, dim=1) to keep HPARAMS['loss'] = 'nll'",
            ),
            "accuracy-and-loss.md#experiment",
        )
    ]


def _random_predictions(result: Result, spec: Spec | None) -> list[Finding]:
    """The model still draws random numbers after model.eval(): inputs predicted again in the
    same batch got other outputs (the eval child's check), or test inputs predicted twice got
    other classes more often than the row's noise note allows (the grader's)."""
    changed = result.changed_outputs or 0.0
    same = result.self_agreement
    noisy = same is not None and same < (spec.audit if spec else Audit()).min_agreement
    if not changed and not noisy:
        return []
    measured = []
    if changed:
        measured.append(f"{_pct(changed)} of the inputs it predicted again got other outputs")
    if same is not None and same < 1:
        measured.append(f"{_pct(1 - same)} of the test inputs it predicted twice got another class")
    seed = f" (seed {result.seed})" if len(result.seeds) > 1 else ""
    return [
        Finding(
            "random_predictions",
            "Dropout left on at evaluation: the same input gets different answers",
            f"The grader predicted the same inputs twice{seed}: " + " and ".join(measured) + ". "
            "After model.eval() a model should give the same answer every time; this one still "
            "draws random numbers. The usual cause is F.dropout(x, p) without "
            "training=self.training: F.dropout's training argument defaults to True, so it keeps "
            "dropping units at evaluation (torch.rand or F.batch_norm(..., training=True) in "
            "forward do the same)." + _FIX_FIRST,
            (
                "use an nn.Dropout(p) layer, which model.eval() switches off",
                "or write F.dropout(x, p, training=self.training)",
            ),
            "dropout.md#dropout-at-evaluation",
        )
    ]


def _with_confusion(findings: list[Finding], result: Result, spec: Spec | None) -> list[Finding]:
    """The last finding also names the test set's largest confusion in words."""
    said = _largest_confusion(result, spec)
    if not said:
        return findings
    last = findings[-1]
    return [*findings[:-1], replace(last, evidence=f"{last.evidence} {said}")]


def _largest_confusion(result: Result, spec: Spec | None) -> str:
    """'The most frequent mistake on the test set: 52 sitting windows predicted as standing
    (of 491).', from the test confusion matrix; "" where it has no mistake."""
    matrix = result.confusion.get("test") if isinstance(result.confusion, dict) else None
    if not matrix or not all(isinstance(row, list) for row in matrix):
        return ""
    cells = [
        (count, true, predicted)
        for true, row in enumerate(matrix)
        for predicted, count in enumerate(row)
        if true != predicted and isinstance(count, int)
    ]
    count, true, predicted = max(cells, default=(0, 0, 0), key=lambda c: c[0])
    if count <= 0:
        return ""
    name = spec.assignment.class_label if spec else str
    unit = UNITS.get(spec.assignment.dataset if spec else "", UNIT).format(true=name(true))
    total = sum(matrix[true])
    of = "all of them" if count == total else f"of {total}"
    seeds = result.class_seeds  # a row graded on several seeds sums their matrices
    counted = f", counted over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else ""
    return (
        f"The most frequent mistake on the test set{counted}: {count} {unit} predicted as "
        f"{name(predicted)} ({of})."
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


# A timeout's advice by where the job was (a row keeps the Stage's words); training's is the
# default.
_TIMEOUT_ADVICE: dict[str, str] = {
    Stage.IMPORT: "code at the top level of your file runs when it is imported: "
    'keep only definitions there, and put experiments under `if __name__ == "__main__":`',
    Stage.BUILD: "build_model never returned: look for a loop that does not end in "
    "build_model or in your model's __init__",
    Stage.LOAD: "loading your weights took too long: submit a state_dict saved "
    "with torch.save(model.state_dict(), ...) or safetensors",
    Stage.PREDICT: "predicting took too long: forward should do a fixed amount of work per "
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
