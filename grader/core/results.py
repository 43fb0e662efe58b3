"""What grading produces: one Result per submission, with named statuses and modes.

Every other part speaks these types: the grader fills them in, the store keeps them, the
publishers render them. Nothing here imports torch, numpy or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

from grader import __version__

STUDENT = "student"  # the kind of a submission's row; any other kind is a reference row
# How graded rows rank within an assignment, best first: (field, descending). A missing value
# ranks last. The board ranks by it and the store's "best attempt" picks by it.
RANKING = (("test_accuracy", True), ("gap", False), ("params", False))


class Status(StrEnum):
    """A row's verdict. The display order of the leaderboard's failed rows follows this order."""

    OK = "ok"
    # Scored, but the integrity audit saw answers that did not come from the model's learning
    # (a signal fired): no rank and no targets until an instructor clears it after review.
    FLAGGED = "flagged"
    # --mode verify: the submitted weights score more than retraining the code reproduces.
    IRREPRODUCIBLE = "irreproducible"
    INVALID = "invalid"  # breaks the contract: missing function, bad HPARAMS, bad outputs
    ERROR = "error"  # the student's code raised
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASHED = "crashed"  # died without a result (a segfault, a kill)
    NONDETERMINISTIC = "nondeterministic"
    SANDBOX = "sandbox"  # a promised isolation layer was missing: no student code ran

    @property
    def regraded(self) -> bool:
        """A busy machine or a broken environment causes these, not the code: grade again."""
        return self in (Status.TIMEOUT, Status.CRASHED, Status.SANDBOX)


class Stage(StrEnum):
    """Where a job phase was, as the child's progress file says (protocol.Progress): what a job
    stopped at its limit was doing, which a row keeps and its advice is chosen by."""

    IMPORT = "importing the submission"
    BUILD = "building the model"
    TRAIN = "training"
    SAVE = "saving the model"
    LOAD = "loading the weights"
    PREDICT = "predicting"


class Mode(StrEnum):
    RETRAIN = "retrain"  # train with the grader's seed
    LOAD = "load"  # evaluate the submitted weights
    AUTO = "auto"  # load when weights are present, else retrain
    VERIFY = "verify"  # retrain, and check that the submitted weights score no better


class Policy(StrEnum):
    """Which of a student's attempts stands for them on a board."""

    BEST = "best"  # their best graded attempt (ranked as the board ranks), else their latest
    LATEST = "latest"  # their latest submission, however it went


class SeedFigures(TypedDict):
    """One seed's own figures in a row graded on several seeds (Result.per_seed)."""

    seed: int
    test_accuracy: float
    train_accuracy: float
    gap: float
    train_seconds: float | None
    holdout_accuracy: float | None  # None: graded without a hold-out
    best_epoch: int | None  # the epoch whose weights were kept, if training said


@dataclass(frozen=True)
class Result:
    student: str
    assignment: str
    status: Status
    message: str = ""
    test_accuracy: float | None = None
    train_accuracy: float | None = None
    gap: float | None = None
    targets: dict[str, bool] = field(default_factory=dict)
    params: int | None = None
    epochs: int | None = None
    train_seconds: float | None = None
    # The integrity audit, from the grader's labels: how often predictions on imperceptibly
    # changed copies of the test inputs agree with those on the originals, the test accuracy
    # lost on the copies, and the accuracy on the spec's private hold-out set (if it has one).
    agreement: float | None = None
    perturbed_drop: float | None = None
    holdout_accuracy: float | None = None
    holdout: str = ""  # which hold-out the row was scored on ("QMNIST's ..."); "": none
    # For the diagnosis, from the first seed's evaluation: how often the same test input got
    # the same class twice, the share of inputs whose outputs changed when predicted again in
    # the same batch (the eval child's word: untrusted), and the share of evaluated inputs whose
    # outputs were already probabilities (non-negative, summing to 1: forward ends in softmax).
    self_agreement: float | None = None
    changed_outputs: float | None = None
    probability_outputs: float | None = None
    # HPARAMS['loss'], HPARAMS['scheduler'] and the weight decay as the grader's training loop
    # used them ("" or None: a custom train(), no scheduler, or graded before they were
    # recorded); untrusted.
    loss: str = ""
    scheduler: str = ""
    weight_decay: float | None = None
    # --mode verify: the submitted weights' test accuracy (the row's own figures are retrained).
    submitted_accuracy: float | None = None
    # Per epoch as the training child reported it (epoch, loss, accuracy, val_accuracy, lr):
    # untrusted, for the student's report only.
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    # The training child's own measure of the model's training accuracy right after train(),
    # on a sample of the training inputs, before the weights were saved: untrusted, it only
    # chooses the diagnosis's words (a far better figure than the evaluated model's means
    # state kept outside the state_dict).
    trained_accuracy: float | None = None
    # The student's own HPARAMS keys (passed to their train(), never read by the grader's loop)
    # with their values as written, shortened; and a warning for each that looks like a
    # misspelt known key. Both from the training child: untrusted, shown as inert text.
    own_hparams: dict[str, str] = field(default_factory=dict)
    hparam_warnings: list[str] = field(default_factory=list)
    # Computed here from the eval child's predictions and the grader's labels, per part
    # ("train", "test"): counts with true classes as rows, and each class's accuracy (None for
    # a class with no examples).
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)
    class_accuracy: dict[str, list[float | None]] = field(default_factory=dict)
    # The contract checks the child ran, in order: {"name": ..., "passed": ...}; untrusted.
    checks: list[dict[str, Any]] = field(default_factory=list)
    # A timeout or out-of-memory row: where the job was (a Stage's words, "building the
    # model"), from the child's progress file; untrusted, it only chooses the advice.
    stage: str = ""
    kind: str = STUDENT  # "student", or a reference row (a baseline) that is never ranked
    mode: Mode = Mode.RETRAIN
    seed: int = 0
    # Graded on several seeds: all of them; the accuracies and gap are then their means, the
    # spread is the test accuracies' standard deviation and train_seconds their total. The
    # confusion matrices are then the seeds' summed (their diagonal's share is the mean test
    # accuracy) while history, best_epoch and the weights are the first seed's.
    seeds: list[int] = field(default_factory=list)
    test_accuracy_std: float | None = None
    # Each graded seed's own figures, in the seeds' order; empty for a failed row, and for a
    # row stored before they were kept (its confusion matrices are then the first seed's).
    per_seed: list[SeedFigures] = field(default_factory=list)
    # The class predicted for every test example, by graded seed (its number as text; packed
    # by similarity/predictions.py): what copy detection compares two models' mistakes by.
    # Empty for a failed row and for rows stored before they were kept.
    test_predictions: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    weights_sha256: str | None = None
    log_tail: str = ""
    content_hash: str = ""
    spec_digest: str = ""
    data_checksum: str = ""
    grader_version: str = __version__
    torch_version: str = ""
    device: str = "cpu"
    cpu: str = ""  # model and instruction-set flags of the machine that graded it
    started_at: str = ""
    finished_at: str = ""

    def __post_init__(self) -> None:
        # Rows read back from the store or built by tests may carry plain strings.
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "mode", Mode(self.mode))

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def graded_seeds(self) -> list[int]:
        """The seeds the row was graded on (a row stored before seeds were listed: its own)."""
        return self.seeds or [self.seed]

    @property
    def class_seeds(self) -> list[int]:
        """The seeds the confusion matrices count: all, once summed (per_seed kept), else the
        row's own seed (a failed or flagged row's, or one stored before they were summed)."""
        return self.graded_seeds if self.per_seed else [self.seed]

    @property
    def reference(self) -> bool:
        """A row to compare with (a baseline), shown apart and never ranked."""
        return self.kind != STUDENT


@dataclass(frozen=True)
class CacheKey:
    """What must be unchanged for a stored result to be reused instead of regrading."""

    content_hash: str
    spec_digest: str
    data_checksum: str
    grader_version: str
    mode: Mode
    torch_version: str
    device: str
    seeds: str = "[]"  # the seeds graded, as the store writes the list (JSON)


@dataclass(frozen=True)
class Environment:
    """Where grading runs: recorded with every attempt; torch and the device are part of the
    reuse key (jobs are pinned to the CPU's instruction-set level, see core/machine.py)."""

    torch_version: str
    device: str
    cpu: str = ""
