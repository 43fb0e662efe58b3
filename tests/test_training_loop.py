"""The standard loop's speed-ups change nothing: shuffling once per epoch and slicing batches
gives the same weights, bit for bit, as gathering each batch the way the loop first did."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.child import training
from grader.child.contract import HParams


def per_batch_gather(model: nn.Module, x: torch.Tensor, y: torch.Tensor, hp: HParams) -> None:
    """The loop as course-grader 0.1 ran it."""
    optimizer = training.make_optimizer(model, hp)
    loss_fn = F.nll_loss if hp.loss == "nll" else F.cross_entropy
    order = torch.Generator().manual_seed(0)
    for _ in range(hp.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=order)
        for start in range(0, len(perm), hp.batch_size):
            batch = perm[start : start + hp.batch_size]
            loss = loss_fn(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(16, 4), nn.LogSoftmax(dim=1))  # fmt: skip


def digest(trained: nn.Module) -> str:
    state = trained.state_dict()
    return hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()


@pytest.mark.parametrize(
    "hp",
    [
        HParams(epochs=3, batch_size=8, lr=0.05, optimizer="sgd", momentum=0.9, loss="nll"),
        HParams(epochs=2, batch_size=16, lr=0.01, optimizer="adam", weight_decay=1e-4),
        HParams(epochs=2, batch_size=50, lr=0.01, optimizer="adamw", loss="nll"),
    ],
    ids=["sgd-momentum", "adam", "adamw-one-batch"],
)
def test_the_standard_loop_gives_the_weights_of_the_original_loop(hp: HParams) -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(50, 20, generator=generator)
    y = torch.randint(0, 4, (50,), generator=generator)
    digests = []
    for train in (per_batch_gather, None):
        training.make_deterministic(0, 1)
        net = model()
        training.seed_everything(0)
        if train is None:
            history = training.train_standard(net, x, y, hp, 0).history
            assert [record.epoch for record in history] == list(range(1, hp.epochs + 1))
        else:
            train(net, x, y, hp)
        digests.append(digest(net))
    assert digests[0] == digests[1]
