"""One job phase inside the sandbox: confine, attest, wait for the go, then run the phase.

`train` gets the training data, trains, and writes the model. `eval` gets weights and one blind
array of inputs (never labels, never told which rows are training rows) and writes class
scores. Both end with a report; see grader.protocol.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from grader import protocol
from grader.child.confine import ConfinementError, attest, confine
from grader.child.progress import ProgressFile
from grader.core.results import Stage, Status
from grader.core.text import one_line
from grader.protocol import (
    MESSAGE_CHARS,
    CheckRecord,
    ChildReport,
    JobConfig,
    Phase,
    Task,
)


class WeightsError(Exception):
    """Submitted or trained weights cannot be loaded into the model."""


def main(argv: list[str]) -> int:
    args = protocol.parse_argv(argv)
    in_dir, out_dir = Path(args.in_dir), Path(args.out_dir)
    failed, error, applied = "", "", None
    try:
        config = JobConfig.from_json((in_dir / protocol.CONFIG).read_text())
        applied = confine(config.confinement)
    except ConfinementError as exc:  # a layer that would not apply: run nothing
        failed, error = exc.layer, exc.problem
    except Exception as exc:  # a config this child cannot follow: run nothing
        failed, error = "child", f"{type(exc).__name__}: {exc}"
    os.write(args.attest_fd, attest(applied, failed, error).to_line())
    os.close(args.attest_fd)
    go = os.read(args.go_fd, 1)
    os.close(args.go_fd)
    if error or go != b"1" or args.phase is Phase.PROBE:
        return 0
    checks: list[CheckRecord] = []
    try:
        run = train if args.phase is Phase.TRAIN else evaluate
        report = run(config.task, in_dir, out_dir, checks, ProgressFile(out_dir))
    except BaseException as exc:  # every student failure, exit() included, becomes a report
        report = _failure(exc, in_dir / protocol.SOURCE)
    report = dataclasses.replace(report, checks=tuple(checks))
    (out_dir / protocol.REPORT).write_text(report.to_json())
    return 0


def train(
    task: Task, in_dir: Path, out_dir: Path, checks: list[CheckRecord], progress: ProgressFile
) -> ChildReport:
    import numpy as np
    import torch

    from grader.child import contract, epochs, training

    module, model = _prepare(task, in_dir, checks, progress)
    hp = contract.parse_hparams(module.HPARAMS, task.max_epochs)
    own = contract.shown_own(module.HPARAMS), tuple(contract.hparam_warnings(module.HPARAMS))
    inputs = training.as_model_input(_load(in_dir / protocol.inputs_file("train")))
    labels = torch.from_numpy(np.asarray(_load(in_dir / protocol.TRAIN_LABELS))).long()
    model.to(training.pick_device(task.device))
    training.seed_everything(task.seed)
    started = time.perf_counter()
    progress.stage(Stage.TRAIN, hp.epochs)
    if hasattr(module, "train"):
        dataset = torch.utils.data.TensorDataset(inputs, labels)
        history: list[protocol.EpochRecord] = []
        # only if train() asks for it
        callback = epochs.callback_for(module.train, history, progress.epoch)
        module.train(model, dataset, dict(module.HPARAMS), **callback)
        trained = training.Trained(history=history)
    else:
        trained = training.train_standard(model, inputs, labels, hp, task.seed, progress.epoch)
    seconds = time.perf_counter() - started
    progress.stage(Stage.SAVE)
    trained_accuracy = training.sample_accuracy(model, inputs, labels, task.seed)
    _save_model(model, out_dir)
    custom = hasattr(module, "train")  # its own loss and schedule, which the grader cannot see
    decay = hp.optimizer_args.get("weight_decay", hp.weight_decay)  # the optimizer's, as given
    return ChildReport(
        Status.OK,
        epochs=len(trained.history) or hp.epochs,  # early stopping may end before hp.epochs
        train_seconds=seconds,
        history=tuple(trained.history),
        best_epoch=trained.best_epoch,
        loss="" if custom else hp.loss,
        scheduler="" if custom else hp.scheduler or "",
        weight_decay=None if custom or not isinstance(decay, int | float) else float(decay),
        trained_accuracy=trained_accuracy,
        own_hparams=own[0],
        hparam_warnings=own[1],
    )


def evaluate(
    task: Task, in_dir: Path, out_dir: Path, checks: list[CheckRecord], progress: ProgressFile
) -> ChildReport:
    import numpy as np

    from grader.child import training

    assert task.weights is not None
    _, model = _prepare(task, in_dir, checks, progress)
    progress.stage(Stage.LOAD)
    _load_weights(model, in_dir / task.weights)
    model.to(training.pick_device(task.device))
    inputs = training.as_model_input(_load(in_dir / protocol.EVAL_INPUTS))
    progress.stage(Stage.PREDICT)
    scores = training.predict(model, inputs)
    # The first batch again, as it was: a deterministic model answers it bit for bit the same.
    first = slice(0, training.PREDICT_BATCH)
    changed = training.changed_share(model, inputs[first], scores[first])
    np.save(out_dir / protocol.SCORES, scores.numpy(), allow_pickle=False)
    _save_model(model, out_dir)
    return ChildReport(Status.OK, changed_outputs=changed)


def _load(path: Path) -> Any:
    import numpy as np

    return np.load(path, allow_pickle=False)


def _prepare(
    task: Task, in_dir: Path, checks: list[CheckRecord], progress: ProgressFile
) -> tuple[ModuleType, Any]:
    """Import the submission and build its model, running the contract checks on both."""
    from grader.child import contract, training

    training.make_deterministic(task.seed, task.threads)
    progress.stage(Stage.IMPORT)
    module = _import_submission(in_dir / protocol.SOURCE)
    _run_checks(contract.module_checks(module, task.max_epochs), checks)
    training.seed_everything(task.seed)
    progress.stage(Stage.BUILD)
    model = module.build_model(task.input_shape, task.num_classes)
    _run_checks(contract.model_checks(model, task.input_shape, task.num_classes), checks)
    return module, model


def _run_checks(checks: Iterator[Any], record: list[CheckRecord]) -> None:
    """The contract's checks one at a time, so the report names those passed and the one that
    failed (recorded before it runs, marked passed after)."""
    from grader.child import contract

    for name, check in checks:
        record.append(CheckRecord(name, passed=False))
        contract.run_checks(iter([(name, check)]))
        record[-1] = CheckRecord(name, passed=True)


def _save_model(model: Any, out_dir: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / protocol.MODEL))


def _import_submission(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("submission", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["submission"] = module
    spec.loader.exec_module(module)
    return module


def _load_weights(model: Any, path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise WeightsError(f"{path.name} holds a {type(state).__name__}, not a state_dict")
        model.load_state_dict(state, strict=True)
    except WeightsError:
        raise
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"weights do not load into the model: {first_line}") from None


def _failure(exc: BaseException, source: Path) -> ChildReport:
    from grader.child.contract import ContractError

    text = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, ContractError | WeightsError):
        return _report(Status.INVALID, str(exc))
    if (
        isinstance(exc, MemoryError)
        or "can't allocate memory" in text
        or "out of memory" in text.lower()
    ):
        return _report(Status.MEMORY, "ran out of memory (" + text + ")")
    if isinstance(exc, SystemExit):
        return _report(Status.ERROR, f"the submission called exit({exc.code!r})")
    sys.stdout.flush()  # the traceback comes last in the log, after what the student printed
    sys.stderr.write(student_traceback(exc, source))
    sys.stderr.flush()
    return _report(Status.ERROR, text + _student_line(exc, source))


def _student_line(exc: BaseException, source: Path) -> str:
    """Point at the deepest line of the student's own file, where the fix usually is."""
    frames = _student_frames(exc, source)
    return f" (line {frames[-1].lineno} of the submission)" if frames else ""


def _student_frames(exc: BaseException, source: Path) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(source)]


def student_traceback(exc: BaseException, source: Path) -> str:
    """The traceback as the student would read it, with their own file's frames only: the
    grader's frames (and its paths) say nothing about their code. The log shows it, so the
    report and `grader check` show the failing line and the calls that led there."""
    frames = _student_frames(exc, source)
    lines = ["Traceback (most recent call last), the lines of your file:"]
    for frame in frames:
        lines.append(f"  line {frame.lineno}, in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line}")
    if frames and traceback.extract_tb(exc.__traceback__)[-1].filename != str(source):
        lines.append("  (raised inside the library code that line called)")
    return "\n".join([*lines, ""]) + "".join(traceback.format_exception_only(exc))


def _report(status: Status, message: str) -> ChildReport:
    return ChildReport(status, one_line(message, MESSAGE_CHARS))
