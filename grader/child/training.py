"""Determinism settings, the standard training loop and batched prediction.

One short loop, in the spirit of nanoGPT: shuffle with a seeded generator, step, repeat; with
HPARAMS asking for them, a schedule, a validation split and early stopping around it.
Runs inside the sandboxed child; the grader's own process never trains.
"""

from __future__ import annotations

import inspect
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler

from grader.child.hparams import (
    OPTIMIZER_KEYS,
    PER_BATCH,
    ContractError,
    HParams,
    optimizers,
    qualname,
    schedulers,
)
from grader.protocol import EpochRecord

PREDICT_BATCH = 1024
SAMPLE = 2048  # training inputs the child measures the trained model on
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_deterministic(seed: int, threads: int) -> None:
    """Fix every source of randomness the grader controls; results are recorded with these."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    seed_everything(seed)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str) -> torch.device:
    """The grader chose the device; a CUDA job also runs cuDNN deterministically."""
    if device == "cuda":
        torch.backends.cudnn.deterministic = True
    return torch.device(device)


@dataclass(frozen=True)
class Trained:
    history: list[EpochRecord]
    best_epoch: int | None = None  # when early stopping kept an earlier epoch's weights


def train_standard(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    hp: HParams,
    seed: int,
    on_epoch: Callable[[int], None] = lambda done: None,
) -> Trained:
    """The student's optimizer, schedule, loss and batch size, exactly as written; records each
    epoch. Shuffling once per epoch and slicing batches gives the same batches, bit for bit,
    as gathering each batch, at less cost."""
    device = next(model.parameters()).device
    inputs, labels = inputs.to(device), labels.to(device)
    held_out = None
    if hp.validation_split:
        kept, held = split_validation(len(labels), hp.validation_split, seed, device)
        held_out = inputs[held], labels[held]
        inputs, labels = inputs[kept], labels[kept]
    optimizer = make_optimizer(model, hp)
    schedule = make_scheduler(optimizer, hp, math.ceil(len(inputs) / hp.batch_size))
    per_batch = schedule if hp.scheduler in PER_BATCH else None
    loss_fn = make_loss(hp.loss)
    order = torch.Generator().manual_seed(seed)  # as before these options: the same batches
    best = BestWeights(hp.early_stopping) if hp.early_stopping else None
    history = []
    for epoch in range(1, hp.epochs + 1):
        loss, accuracy, lr = _train_epoch(
            model, inputs, labels, hp.batch_size, optimizer, loss_fn, order, per_batch
        )
        val_accuracy = accuracy_on(model, *held_out) if held_out else None
        history.append(EpochRecord(epoch, loss, accuracy, val_accuracy, lr))
        on_epoch(epoch)
        if isinstance(schedule, lr_scheduler.ReduceLROnPlateau):
            assert val_accuracy is not None  # the contract requires a validation split
            schedule.step(val_accuracy)
        elif schedule is not None and per_batch is None:
            schedule.step()
        if best is not None and best.stop_after(epoch, val_accuracy, model):
            break
    return Trained(history, best.restore(model, len(history)) if best is not None else None)


def _train_epoch(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    order: torch.Generator,
    per_batch: lr_scheduler.LRScheduler | None,
) -> tuple[float, float, float]:
    """One pass over the shuffled training set: the mean loss and accuracy of its batches, and
    the learning rate of its last step."""
    device = inputs.device
    model.train()
    perm = torch.randperm(len(inputs), generator=order).to(device)
    shuffled_x, shuffled_y = inputs[perm], labels[perm]
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    lr = optimizer.param_groups[0]["lr"]
    for start in range(0, len(perm), batch_size):
        x = shuffled_x[start : start + batch_size]
        y = shuffled_y[start : start + batch_size]
        scores = model(x)
        loss = loss_fn(scores, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr = optimizer.param_groups[0]["lr"]
        if per_batch is not None:
            per_batch.step()
        loss_sum += loss.detach() * len(y)
        correct += (scores.detach().argmax(dim=1) == y).sum()
    return loss_sum.item() / len(perm), correct.item() / len(perm), lr


def split_validation(
    size: int, fraction: float, seed: int, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices kept for training and held out for validation, drawn with the grading seed on
    the CPU (the same split on any device); each in the data's own order."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    count = round(size * fraction)
    if not 0 < count < size:
        raise ContractError(
            f"HPARAMS['validation_split'] = {fraction} holds out {count} of {size} "
            "training examples; choose a larger fraction"
        )
    return order[count:].sort().values.to(device), order[:count].sort().values.to(device)


def accuracy_on(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(inputs), PREDICT_BATCH):
            scores = model(inputs[start : start + PREDICT_BATCH])
            correct += int((scores.argmax(dim=1) == labels[start : start + PREDICT_BATCH]).sum())
    return correct / len(inputs)


def sample_accuracy(
    model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, seed: int
) -> float | None:
    """The model's accuracy, as trained, on a seeded sample of its training inputs: state
    that train() kept outside the state_dict is still there. None if the model cannot say."""
    chosen = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:SAMPLE]
    device = next(model.parameters()).device
    try:
        return accuracy_on(model, inputs[chosen].to(device), labels[chosen].to(device))
    except Exception:  # the evaluation job reports a forward that fails, with its traceback
        return None


class BestWeights:
    """Early stopping: a copy of the weights of the epoch with the best validation accuracy
    (the earliest, on a tie), and a stop once `patience` epochs have not beaten it."""

    def __init__(self, patience: int) -> None:
        self.patience, self.epoch, self.accuracy = patience, 0, -1.0
        self.state: dict[str, torch.Tensor] = {}

    def stop_after(self, epoch: int, accuracy: float | None, model: torch.nn.Module) -> bool:
        assert accuracy is not None  # the contract requires a validation split
        if accuracy > self.accuracy:
            self.epoch, self.accuracy = epoch, accuracy
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return epoch - self.epoch >= self.patience

    def restore(self, model: torch.nn.Module, last_epoch: int) -> int | None:
        """Load the best epoch's weights; that epoch, or None when it was the last one."""
        if self.epoch == last_epoch:
            return None
        model.load_state_dict(self.state)
        return self.epoch


def make_optimizer(model: torch.nn.Module, hp: HParams) -> torch.optim.Optimizer:
    """The named torch.optim class with `lr`, `weight_decay` and `momentum` where it takes
    them (sgd, adam and adamw get exactly the arguments they always did), then optimizer_args."""
    cls = optimizers()[hp.optimizer]
    takes = inspect.signature(cls).parameters
    args = {key: getattr(hp, key) for key in OPTIMIZER_KEYS if key in takes}
    return _construct("optimizer", cls, model.parameters(), {**args, **hp.optimizer_args})


def make_scheduler(
    optimizer: torch.optim.Optimizer, hp: HParams, batches_per_epoch: int
) -> lr_scheduler.LRScheduler | None:
    if hp.scheduler is None:
        return None
    args = dict(hp.scheduler_args)
    if hp.scheduler == "onecyclelr":
        args["total_steps"] = hp.epochs * batches_per_epoch
    if hp.scheduler == "reducelronplateau":
        args["mode"] = "max"  # it watches validation accuracy
    schedule: lr_scheduler.LRScheduler = _construct(
        "scheduler", schedulers()[hp.scheduler], optimizer, args
    )
    return schedule


def _construct(key: str, cls: type, first: Any, args: dict[str, Any]) -> Any:
    """What torch itself refuses (a beta of 1.5, CyclicLR's momentum without one) is invalid."""
    try:
        return cls(first, **args)
    except (ValueError, TypeError) as exc:
        raise ContractError(
            f"{qualname(cls)} refused HPARAMS[{key!r}] with HPARAMS[{key + '_args'!r}]: {exc}"
        ) from None


def make_loss(name: str) -> LossFn:
    if name == "nll":
        return F.nll_loss  # the model returns log-probabilities
    if name == "mse":
        return mse_on_one_hot
    return F.cross_entropy


def mse_on_one_hot(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error between softmax(scores) and one-hot labels, averaged over the batch
    and the classes. Softmax makes it the same for logits and for log-probabilities."""
    target = F.one_hot(labels, scores.shape[1]).to(scores.dtype)
    return F.mse_loss(F.softmax(scores, dim=1), target)


def predict(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Class scores for every input, on the CPU, in float32."""
    device = next(model.parameters()).device
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(inputs), PREDICT_BATCH):
            outputs.append(model(inputs[start : start + PREDICT_BATCH].to(device)).float().cpu())
    return torch.cat(outputs)


def changed_share(model: torch.nn.Module, inputs: torch.Tensor, scores: torch.Tensor) -> float:
    """The share of these inputs whose outputs change when they are predicted again, in the
    same batch: a model in eval mode that still draws random numbers (dropout left on)."""
    if not len(inputs):
        return 0.0
    again = predict(model, inputs)
    return float((again != scores).any(dim=1).double().mean())


def as_model_input(array: np.ndarray) -> torch.Tensor:
    """Stored images are uint8; the contract promises float32 in [0, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255.0)
    return tensor.float()
