"""Determinism settings, the standard training loop and batched prediction.

One short loop, in the spirit of nanoGPT: shuffle with a seeded generator, step, repeat.
Runs inside the sandboxed child; the grader's own process never trains.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.nn.functional as F

from grader.child.contract import HParams
from grader.protocol import EpochRecord

PREDICT_BATCH = 1024


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


def make_optimizer(model: torch.nn.Module, hp: HParams) -> torch.optim.Optimizer:
    params = model.parameters()
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)


def train_standard(
    model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, hp: HParams, seed: int
) -> list[EpochRecord]:
    """The student's optimizer, loss and batch size, exactly as written; returns each epoch's
    record. Shuffling once per epoch and slicing batches gives the same batches, bit for bit,
    as gathering each batch, at less cost."""
    device = next(model.parameters()).device
    inputs, labels = inputs.to(device), labels.to(device)
    optimizer = make_optimizer(model, hp)
    loss_fn = F.nll_loss if hp.loss == "nll" else F.cross_entropy
    order = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, hp.epochs + 1):
        model.train()
        perm = torch.randperm(len(inputs), generator=order).to(device)
        shuffled_x, shuffled_y = inputs[perm], labels[perm]
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        for start in range(0, len(perm), hp.batch_size):
            x = shuffled_x[start : start + hp.batch_size]
            y = shuffled_y[start : start + hp.batch_size]
            scores = model(x)
            loss = loss_fn(scores, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(y)
            correct += (scores.detach().argmax(dim=1) == y).sum()
        history.append(
            EpochRecord(
                epoch,
                loss=loss_sum.item() / len(perm),
                accuracy=correct.item() / len(perm),
                lr=optimizer.param_groups[0]["lr"],
            )
        )
    return history


def predict(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Class scores for every input, on the CPU, in float32."""
    device = next(model.parameters()).device
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(inputs), PREDICT_BATCH):
            outputs.append(model(inputs[start : start + PREDICT_BATCH].to(device)).float().cpu())
    return torch.cat(outputs)


def as_model_input(array: np.ndarray) -> torch.Tensor:
    """Stored images are uint8; the contract promises float32 in [0, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255.0)
    return tensor.float()
