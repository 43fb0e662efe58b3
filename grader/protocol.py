"""The grader <-> child protocol, defined once and imported by both sides.

One job phase is one child process, started by the sandbox as

    python -s -B -P -m grader.child PHASE IN_DIR OUT_DIR ATTEST_FD GO_FD

IN_DIR (read-only for the child) holds `job.json` (a JobConfig), the student's source as
`submission.py`, and the phase's inputs; OUT_DIR is the only place it may write.

Before any student code runs, the child applies the confinement the config asks for, reads back
from the kernel what it really got, writes that Attestation as one JSON line to ATTEST_FD, closes
it, and waits for one byte on GO_FD. The grader compares the attestation with what it promised
and sends the byte only if they agree; otherwise the job ends there, having run nothing of the
student's. While it runs, it keeps `progress.json` (a Progress: the stage it is in, the epochs
done) up to date, so a job stopped at its limit can say where its time went. At the end the child
writes `report.json` (a ChildReport) and its output files. The grader treats everything in OUT_DIR
as untrusted and computes every metric itself.

Bump PROTOCOL_VERSION whenever any of this changes; the child refuses a config of another version.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from grader.core.machine import pinned_environment
from grader.core.results import Stage, Status
from grader.core.text import one_line

# 1: course-grader 0.1's argv and environment, never versioned; 2: the training history;
# 3: the contract checks the child ran, in the report; 4: Landlock, in the config and attestation;
# 5: one blind array of inputs for eval (training sample, test, copies, hold-out), one scores file;
# 6: the attestation names the layer that failed apart from the problem; 7: the progress
# file, the loss and the scheduler (and weight decay) the training loop used, in the train
# report, and in the eval report the share of inputs whose outputs changed when predicted
# again.
PROTOCOL_VERSION = 7
MESSAGE_CHARS = 300
ATTESTATION_BYTES = 16_000
REPORT_BYTES = 256_000
MAX_HISTORY = 1000  # epochs a report may describe
MAX_CHECKS = 64  # contract checks a report may list
MAX_OWN_HPARAMS = 32  # a student's own HPARAMS keys (and warnings) a report may list
OWN_HPARAM_CHARS = 60
CHECK_NAME_CHARS = 64
HPARAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # a loss's or a scheduler's name

# Files in IN_DIR
CONFIG = "job.json"
SOURCE = "submission.py"
WEIGHTS_STEM = "weights"  # eval: the weights to load, "weights.safetensors" or "weights.pt"
TRAIN_LABELS = "train_labels.npy"
# eval: every input to predict on, in an order only the grader knows (see grader.jobs.audit)
EVAL_INPUTS = "inputs.npy"
# Files in OUT_DIR
REPORT = "report.json"
PROGRESS = "progress.json"
PROGRESS_BYTES = 1_000
MODEL = "model.safetensors"
SCORES = "scores.npy"  # eval: class scores, one row per row of EVAL_INPUTS

# Where the job's folders appear inside a bubblewrap view; other modes use the host paths.
VIEW_IN, VIEW_OUT = "/job/in", "/job/out"
# Namespaces a job must not share with the grader when the namespaces layer is on.
NAMESPACES = ("ipc", "mnt", "net", "pid", "uts")
# RLIMIT_CPU's hard limit is this far above its soft one: the soft limit sends SIGXCPU, which
# the grader reads as "used up its CPU time"; a hard limit equal to it would send SIGKILL first.
CPU_GRACE_SECONDS = 5


def rlimit_pair(name: str, value: int) -> tuple[int, int]:
    """The (soft, hard) pair a job's rlimit is set to."""
    return (value, value + CPU_GRACE_SECONDS) if name == "RLIMIT_CPU" else (value, value)


# The rlimits a child reports; RLIMIT_NPROC is only set where the job has a uid of its own.
RLIMITS = (
    "RLIMIT_DATA",
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_NOFILE",
    "RLIMIT_CORE",
    "RLIMIT_NPROC",
)
REPORTED = frozenset({Status.OK, Status.INVALID, Status.ERROR, Status.MEMORY})


class ProtocolError(Exception):
    """A message that does not follow this protocol (another version, a missing field)."""


class Phase(StrEnum):
    TRAIN = "train"  # training data only; writes MODEL
    EVAL = "eval"  # weights and EVAL_INPUTS only, never labels; writes SCORES and MODEL
    PROBE = "probe"  # confine and attest, nothing else: proves the layers at start-up


def inputs_file(part: str) -> str:
    """The inputs of a data part in the train phase's IN_DIR ("train")."""
    return f"{part}_inputs.npy"


@dataclass(frozen=True)
class Task:
    """What the grader asks of a phase."""

    phase: Phase
    seed: int = 0
    threads: int = 1
    max_epochs: int = 1
    input_shape: tuple[int, ...] = ()
    num_classes: int = 2
    weights: str | None = None  # eval: the weights file's name in IN_DIR
    device: str = "cpu"  # "cpu" or "cuda"


@dataclass(frozen=True)
class LandlockRules:
    """The paths a job may reach, as it sees them; everything else is out of its reach."""

    read: tuple[str, ...]  # read and execute files, list folders
    write: tuple[str, ...]  # and create, write, rename and remove under them
    devices: tuple[str, ...]  # character devices to read, write and ioctl (/dev/null, GPUs)
    min_abi: int = 1

    def describe(self, abi: int) -> tuple[str, ...]:
        """The rules as enforced under a kernel's ABI, in words: what the child attests and the
        grader expects."""
        rules = [f"{kind} {path}" for kind, paths in
                 (("read", self.read), ("write", self.write), ("device", self.devices))
                 for path in paths]  # fmt: skip
        if abi >= 4:
            rules.append("tcp: no bind, no connect")
        if abi >= 6:
            rules.append("scoped: abstract unix sockets, signals")
        return tuple(rules)

    @classmethod
    def from_data(cls, raw: dict[str, Any]) -> LandlockRules:
        return cls(
            read=tuple(map(str, raw["read"])),
            write=tuple(map(str, raw["write"])),
            devices=tuple(map(str, raw["devices"])),
            min_abi=int(raw.get("min_abi", 1)),
        )


@dataclass(frozen=True)
class Confinement:
    """What the sandbox asks the child to apply to itself before any student code runs."""

    rlimits: dict[str, int]  # RLIMIT_* name -> soft and hard value
    seccomp_library: str | None  # absolute path of libseccomp; None: no filter was promised
    landlock: LandlockRules | None = None  # None: no Landlock was promised


@dataclass(frozen=True)
class JobConfig:
    task: Task
    confinement: Confinement
    protocol: int = PROTOCOL_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobConfig:
        raw = json.loads(text)
        if raw.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the job speaks protocol {raw.get('protocol')!r}, this child "
                f"{PROTOCOL_VERSION}: grader and child come from different installs"
            )
        task = dict(raw["task"])
        task["phase"] = Phase(task["phase"])
        task["input_shape"] = tuple(task["input_shape"])
        confinement = dict(raw["confinement"])
        if confinement.get("landlock") is not None:
            confinement["landlock"] = LandlockRules.from_data(confinement["landlock"])
        return cls(Task(**task), Confinement(**confinement))


@dataclass(frozen=True)
class Attestation:
    """What the child really runs under, read from the kernel after confining itself."""

    seccomp: int  # /proc/self/status "Seccomp": 0 off, 2 filter
    uid: int
    gid: int
    groups: tuple[int, ...]
    cap_effective: int
    cap_permitted: int
    cap_bounding: int
    no_new_privs: int
    rlimits: dict[str, tuple[int, int]]
    namespaces: dict[str, str]  # name -> "net:[4026532...]"
    landlock_abi: int = 0  # the kernel's ABI when Landlock was applied; 0: not applied
    landlock_rules: tuple[str, ...] = ()  # LandlockRules.describe, as applied
    landlock_enforced: bool = False  # the job tried to list / and was refused
    # The layer that could not be applied ("child": a config it cannot follow) and why; the
    # child then exits without running anything.
    failed_layer: str = ""
    error: str = ""
    protocol: int = PROTOCOL_VERSION

    def to_line(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Attestation:
        try:
            raw = json.loads(line)
            return cls(
                seccomp=int(raw["seccomp"]),
                uid=int(raw["uid"]),
                gid=int(raw["gid"]),
                groups=tuple(int(g) for g in raw["groups"]),
                cap_effective=int(raw["cap_effective"]),
                cap_permitted=int(raw["cap_permitted"]),
                cap_bounding=int(raw["cap_bounding"]),
                no_new_privs=int(raw["no_new_privs"]),
                rlimits={str(k): (int(v[0]), int(v[1])) for k, v in raw["rlimits"].items()},
                namespaces={str(k): str(v) for k, v in raw["namespaces"].items()},
                landlock_abi=int(raw.get("landlock_abi", 0)),
                landlock_rules=tuple(str(r) for r in raw.get("landlock_rules", ())),
                landlock_enforced=raw.get("landlock_enforced") is True,
                failed_layer=str(raw.get("failed_layer", "")),
                error=str(raw.get("error", "")),
                protocol=int(raw["protocol"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ProtocolError(f"unreadable attestation ({type(exc).__name__})") from None


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training as the child saw it: for the student's report, never for ranking."""

    epoch: int
    loss: float | None = None  # mean training loss over the epoch's batches
    accuracy: float | None = None  # on the epoch's training batches, as they were trained on
    val_accuracy: float | None = None  # on a validation split held out of the training set
    lr: float | None = None  # the learning rate the epoch ended with

    @classmethod
    def parse(cls, raw: Any) -> EpochRecord | None:
        if not isinstance(raw, dict) or _integer(raw.get("epoch")) is None:
            return None
        return cls(
            epoch=raw["epoch"],
            loss=_number(raw.get("loss")),
            accuracy=_number(raw.get("accuracy")),
            val_accuracy=_number(raw.get("val_accuracy")),
            lr=_number(raw.get("lr")),
        )


@dataclass(frozen=True)
class CheckRecord:
    """One contract check the child ran, by name, and whether the submission passed it."""

    name: str
    passed: bool

    @classmethod
    def parse(cls, raw: Any) -> CheckRecord | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("passed"), bool):
            return None
        name = raw.get("name")
        name = one_line(name, CHECK_NAME_CHARS) if isinstance(name, str) else ""
        return cls(name, raw["passed"]) if name else None


@dataclass(frozen=True)
class Progress:
    """The child's running account of a phase. Untrusted: student code could have written it."""

    stage: Stage
    epochs_done: int | None = None  # training: the epochs finished so far, when known
    epochs_asked: int | None = None  # training: HPARAMS["epochs"]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def parse(cls, raw: Any) -> Progress | None:
        """Progress from decoded JSON, or None if it is not one this protocol could have sent."""
        stage = raw.get("stage") if isinstance(raw, dict) else None
        if not isinstance(stage, str) or stage not in {str(s) for s in Stage}:
            return None
        done, asked = _integer(raw.get("epochs_done")), _integer(raw.get("epochs_asked"))
        return cls(Stage(stage), _count(done), _count(asked))


@dataclass(frozen=True)
class ChildReport:
    """The child's own account of a phase. Untrusted: student code could have written it."""

    status: Status
    message: str = ""
    epochs: int | None = None  # epochs trained
    train_seconds: float | None = None
    history: tuple[EpochRecord, ...] = ()
    best_epoch: int | None = None  # the epoch whose weights were kept, when not the last
    # The contract checks run, in order; a failed one is last (the phase stopped there).
    checks: tuple[CheckRecord, ...] = ()
    # train: HPARAMS['loss'] and HPARAMS['scheduler'] as the grader's loop used them; "" for a
    # custom train() (which uses its own) and for no scheduler.
    loss: str = ""
    scheduler: str = ""
    weight_decay: float | None = None
    # eval: the share of its first batch of inputs whose outputs changed when predicted again
    changed_outputs: float | None = None
    # train: the model's accuracy on a sample of the training inputs right after training; the
    # student's own HPARAMS keys with their values, shortened; warnings about those keys.
    trained_accuracy: float | None = None
    own_hparams: dict[str, str] = field(default_factory=dict)
    hparam_warnings: tuple[str, ...] = ()

    def to_json(self) -> str:
        report = asdict(self)
        report["status"] = str(self.status)
        return json.dumps(report)

    @classmethod
    def parse(cls, raw: Any) -> ChildReport | None:
        """A report from decoded JSON, or None if it is not one this protocol could have sent."""
        status = raw.get("status") if isinstance(raw, dict) else None
        if not isinstance(status, str) or status not in REPORTED:
            return None
        history = raw.get("history")
        records = history[:MAX_HISTORY] if isinstance(history, list) else []
        checks = raw.get("checks")
        check_records = checks[:MAX_CHECKS] if isinstance(checks, list) else []
        return cls(
            status=Status(status),
            message=one_line(str(raw.get("message", "")), MESSAGE_CHARS),
            epochs=_integer(raw.get("epochs")),
            train_seconds=_number(raw.get("train_seconds")),
            history=tuple(r for r in map(EpochRecord.parse, records) if r is not None),
            best_epoch=_integer(raw.get("best_epoch")),
            checks=tuple(c for c in map(CheckRecord.parse, check_records) if c is not None),
            loss=_name(raw.get("loss")),
            scheduler=_name(raw.get("scheduler")),
            changed_outputs=_share(raw.get("changed_outputs")),
            weight_decay=_number(raw.get("weight_decay")),
            trained_accuracy=_share(raw.get("trained_accuracy")),
            own_hparams=_own_hparams(raw.get("own_hparams")),
            hparam_warnings=_texts(raw.get("hparam_warnings")),
        )


def _own_hparams(value: Any) -> dict[str, str]:
    """Up to MAX_OWN_HPARAMS string pairs, each one short line; anything else is dropped."""
    if not isinstance(value, dict):
        return {}
    pairs = [(k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str)]
    return {
        one_line(k, OWN_HPARAM_CHARS): one_line(v, OWN_HPARAM_CHARS)
        for k, v in pairs[:MAX_OWN_HPARAMS]
    }


def _texts(value: Any) -> tuple[str, ...]:
    """Up to MAX_OWN_HPARAMS messages, each one line."""
    items = value[:MAX_OWN_HPARAMS] if isinstance(value, list) else []
    return tuple(one_line(v, MESSAGE_CHARS) for v in items if isinstance(v, str))


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(value: int | None) -> int | None:
    return value if value is not None and 0 <= value <= 1_000_000 else None


def _name(value: Any) -> str:
    """A loss's or a scheduler's name, or "": anything else a child wrote is dropped."""
    return value if isinstance(value, str) and HPARAM_NAME.fullmatch(value) else ""


def _share(value: Any) -> float | None:
    """A fraction from 0 to 1, or None."""
    number = _number(value)
    return number if number is not None and 0 <= number <= 1 else None


def _number(value: Any) -> float | None:
    """A finite float, or None: a child may write anything, NaN included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def child_argv(python: str, args: list[str]) -> list[str]:
    """A cold child's command line; a warm one is forked with the same args (see child_args)."""
    # -s: no user site-packages; -B: no .pyc written; -P: the working folder is not importable;
    # -u: unbuffered, so what the student printed is in the log even when the job is killed.
    return [python, "-s", "-B", "-P", "-u", "-m", "grader.child", *args]


def child_args(phase: Phase, in_dir: str, out_dir: str, attest_fd: int, go_fd: int) -> list[str]:
    return [str(phase), in_dir, out_dir, str(attest_fd), str(go_fd)]


@dataclass(frozen=True)
class ChildArgs:
    phase: Phase
    in_dir: str
    out_dir: str
    attest_fd: int
    go_fd: int


def parse_argv(argv: list[str]) -> ChildArgs:
    """The child's side of child_args."""
    if len(argv) != 5:
        raise ProtocolError(f"expected 5 arguments, got {len(argv)}")
    return ChildArgs(Phase(argv[0]), argv[1], argv[2], int(argv[3]), int(argv[4]))


def child_env(threads: int) -> dict[str, str]:
    """The child's whole environment: nothing of the grader's leaks through; the numeric
    libraries pinned to this CPU's level (grader.core.machine)."""
    count = str(threads)
    return {
        **pinned_environment(),
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        # A job killed at its limit keeps its output tail: nothing waits in a buffer (a warm
        # job is forked from a process started with this environment, so it holds there too).
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": count,
        "MKL_NUM_THREADS": count,
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }
