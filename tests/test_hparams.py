"""The wider HPARAMS: any torch.optim optimizer and lr_scheduler by name with checked arguments,
three losses, a validation split and early stopping. Parsing and the loop run in this process on
tiny synthetic data; the three kinds the issue names are also graded through the real sandbox."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from support.grading import GradeSource
from torch import nn

from grader.child.hparams import (
    GRADER_OWNED,
    ContractError,
    HParams,
    _signature,
    optimizers,
    parse_hparams,
    schedulers,
)
from grader.child.training import (
    BestWeights,
    make_deterministic,
    make_optimizer,
    make_scheduler,
    mse_on_one_hot,
    split_validation,
    train_standard,
)
from grader.core.results import Status
from grader.protocol import EpochRecord

VALID = {"epochs": 3, "batch_size": 16, "lr": 0.01}
SEED = 0


@pytest.fixture(autouse=True)
def keep_torch_settings() -> Iterator[None]:
    """The loop runs here under the child's determinism settings; other tests get theirs back."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def hp(**extra: Any) -> HParams:
    return parse_hparams({**VALID, **extra}, 10)


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"optimizer": "RAdam"}, {"optimizer": "radam"}),
        ({"optimizer": "NAdam", "optimizer_args": {"momentum_decay": 0.005}},
         {"optimizer": "nadam"}),
        ({"optimizer": "Adadelta", "lr": 1.0}, {"optimizer": "adadelta"}),
        ({"optimizer": "adam", "optimizer_args": {"betas": [0.9, 0.99]}},
         {"optimizer_args": {"betas": (0.9, 0.99)}}),
        ({"optimizer": "sgd", "optimizer_args": {"nesterov": True, "momentum": 0.9}},
         {"optimizer_args": {"nesterov": True, "momentum": 0.9}}),
        ({"lr": 0.01, "optimizer_args": {"lr": 0.01}}, {"optimizer_args": {"lr": 0.01}}),
        ({"scheduler": "StepLR", "scheduler_args": {"step_size": 2, "gamma": 0.5}},
         {"scheduler": "steplr", "scheduler_args": {"step_size": 2, "gamma": 0.5}}),
        ({"scheduler": "multisteplr", "scheduler_args": {"milestones": [2, 4]}},
         {"scheduler_args": {"milestones": (2, 4)}}),
        ({"scheduler": "OneCycleLR", "scheduler_args": {"max_lr": 0.1}},
         {"scheduler": "onecyclelr"}),
        ({"scheduler": "reducelronplateau", "validation_split": 0.2}, {"validation_split": 0.2}),
        ({"loss": "mse"}, {"loss": "mse"}),
        ({"validation_split": 0.1, "early_stopping": 2}, {"early_stopping": 2}),
        ({"validation_split": 0}, {"validation_split": 0}),
    ],
)  # fmt: skip
def test_names_in_any_case_and_plain_arguments_are_accepted(
    extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    parsed = hp(**extra)
    for key, value in expected.items():
        assert getattr(parsed, key) == value


ADAM = "torch.optim.Adam"
HPARAM_ERRORS = [
    ({"optimizer_args": [1]}, "HPARAMS['optimizer_args'] must be a dict, not list"),
    (
        {"optimizer_args": {"betaz": (0.9, 0.99)}},
        f"HPARAMS['optimizer_args'] has unknown argument 'betaz' for {ADAM} (known: amsgrad, "
        "betas, decoupled_weight_decay, eps, lr, maximize, weight_decay)",
    ),
    (
        {"optimizer_args": {"betas": 0.9}},
        f"HPARAMS['optimizer_args']['betas'] must be a list of 2 numbers for {ADAM}, not 0.9",
    ),
    (
        {"optimizer_args": {"betas": [0.9]}},
        f"HPARAMS['optimizer_args']['betas'] must be a list of 2 numbers for {ADAM}, not [0.9]",
    ),
    (
        {"optimizer_args": {"amsgrad": "yes"}},
        f"HPARAMS['optimizer_args']['amsgrad'] must be true or false for {ADAM}, not 'yes'",
    ),
    (
        {"optimizer_args": {"eps": True}},
        f"HPARAMS['optimizer_args']['eps'] must be a number for {ADAM}, not True",
    ),
    (
        {"optimizer_args": {"eps": math.nan}},
        "HPARAMS['optimizer_args']['eps'] must be finite, not nan",
    ),
    (
        {"optimizer_args": {"betas": [0.9, math.inf]}},
        "HPARAMS['optimizer_args']['betas'] must be finite, not [0.9, inf]",
    ),
    (
        {"optimizer_args": {"betas": [[0.9], [0.99]]}},
        "HPARAMS['optimizer_args']['betas'] must hold numbers only, not [[0.9], [0.99]]",
    ),
    (
        {"optimizer_args": {"betas": {"first": 0.9}}},
        "HPARAMS['optimizer_args']['betas'] must be plain data (a number, true/false, a string "
        "or a list of numbers), not dict",
    ),
    (
        {"optimizer_args": {"params": []}},
        "HPARAMS['optimizer_args']['params'] is not allowed: the grader passes the model's "
        "parameters",
    ),
    (
        {"optimizer_args": {"fused": True}},
        "HPARAMS['optimizer_args']['fused'] is not allowed: the grader picks the implementation, "
        "the same for every submission",
    ),
    (
        {"optimizer_args": {"lr": 0.1}},
        "HPARAMS['optimizer_args']['lr'] = 0.1 contradicts HPARAMS['lr'] = 0.01; give it once",
    ),
    (
        {"optimizer": "sgd", "momentum": 0.9, "optimizer_args": {"momentum": 0.5}},
        "HPARAMS['optimizer_args']['momentum'] = 0.5 contradicts HPARAMS['momentum'] = 0.9; "
        "give it once",
    ),
    (
        {"optimizer": "lbfgs"},
        "HPARAMS['optimizer'] = 'lbfgs' is not offered: it needs a closure that recomputes the "
        "loss; write your own train() for it",
    ),
    (
        {"optimizer": 3},
        f"HPARAMS['optimizer'] must name a class in torch.optim ({', '.join(sorted(optimizers()))})"
        ", not 3",
    ),
    (
        {"scheduler": "cosine"},
        "HPARAMS['scheduler'] must name a class in torch.optim.lr_scheduler "
        f"({', '.join(sorted(schedulers()))}), not 'cosine'",
    ),
    (
        {"scheduler": "lambdalr", "scheduler_args": {"lr_lambda": 0.5}},
        "HPARAMS['scheduler'] = 'lambdalr' is not offered: it takes a Python function; write "
        "your own train() for it",
    ),
    ({"scheduler_args": {"gamma": 0.5}}, "HPARAMS['scheduler_args'] needs HPARAMS['scheduler']"),
    ({"scheduler_args": []}, "HPARAMS['scheduler_args'] needs HPARAMS['scheduler']"),
    (
        {"loss": ["mse"]},
        "HPARAMS['loss'] must be one of cross_entropy (on logits); nll (on log-probabilities, "
        "from a forward ending in log_softmax); mse (between softmax(outputs) and one-hot "
        "labels); not ['mse']",
    ),
    (
        {"optimizer": ["adam"]},
        f"HPARAMS['optimizer'] must name a class in torch.optim ({', '.join(sorted(optimizers()))})"
        ", not ['adam']",
    ),
    (
        {"scheduler": {"name": "steplr"}},
        "HPARAMS['scheduler'] must name a class in torch.optim.lr_scheduler "
        f"({', '.join(sorted(schedulers()))}), not {{'name': 'steplr'}}",
    ),
    (
        {"scheduler": "steplr"},
        "HPARAMS['scheduler_args'] must give 'step_size' for torch.optim.lr_scheduler.StepLR",
    ),
    (
        {"scheduler": "steplr", "scheduler_args": {"step_size": 2.5}},
        "HPARAMS['scheduler_args']['step_size'] must be an integer for "
        "torch.optim.lr_scheduler.StepLR, not 2.5",
    ),
    (
        {"scheduler": "multisteplr", "scheduler_args": {"milestones": [2.5]}},
        "HPARAMS['scheduler_args']['milestones'] must be a list of integers for "
        "torch.optim.lr_scheduler.MultiStepLR, not [2.5]",
    ),
    (
        {"scheduler": "cycliclr",
         "scheduler_args": {"base_lr": 0.001, "max_lr": 0.1, "mode": "up"}},
        "HPARAMS['scheduler_args']['mode'] must be one of 'triangular', 'triangular2', "
        "'exp_range' for torch.optim.lr_scheduler.CyclicLR, not 'up'",
    ),
    (
        {"scheduler": "steplr", "scheduler_args": {"step_size": 2, "last_epoch": 3}},
        "HPARAMS['scheduler_args']['last_epoch'] is not allowed: a schedule always starts at the "
        "first epoch",
    ),
    (
        {"scheduler": "onecyclelr", "scheduler_args": {"max_lr": 0.1, "total_steps": 100}},
        "HPARAMS['scheduler_args']['total_steps'] is not allowed: the grader sets total_steps to "
        "epochs x batches per epoch",
    ),
    (
        {"scheduler": "reducelronplateau"},
        "HPARAMS['scheduler'] watches validation accuracy: also set HPARAMS['validation_split'], "
        "e.g. 0.1",
    ),
    (
        {"scheduler": "reducelronplateau", "validation_split": 0.1,
         "scheduler_args": {"mode": "min"}},
        "HPARAMS['scheduler_args']['mode'] is not allowed: the grader watches validation "
        "accuracy, so the mode is always 'max'",
    ),
    (
        {"early_stopping": 2},
        "HPARAMS['early_stopping'] watches validation accuracy: also set "
        "HPARAMS['validation_split'], e.g. 0.1",
    ),
    (
        {"early_stopping": 0, "validation_split": 0.1},
        "HPARAMS['early_stopping'] must be an integer from 1 to 10, not 0",
    ),
    (
        {"validation_split": 0.6},
        "HPARAMS['validation_split'] must be a number from 0 to 0.5 (the fraction of the "
        "training set held out), not 0.6",
    ),
    (
        {"validation_split": True},
        "HPARAMS['validation_split'] must be a number from 0 to 0.5 (the fraction of the "
        "training set held out), not True",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "message"), HPARAM_ERRORS, ids=[m for _, m in HPARAM_ERRORS])
def test_bad_training_vocabulary_is_invalid_with_a_message_naming_the_key(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ContractError) as info:
        hp(**extra)
    assert str(info.value) == message


@pytest.mark.parametrize("name", sorted(optimizers()) + sorted(schedulers()))
def test_every_offered_class_has_its_argument_types_checked(name: str) -> None:
    """A torch release that hides a hint from get_type_hints would silently turn off the type
    checks for that class: every annotated argument must resolve."""
    cls = optimizers().get(name) or schedulers()[name]
    params, hints = _signature(cls)
    annotated = {n for n, p in params.items() if p.annotation is not inspect.Parameter.empty}
    assert annotated and annotated <= set(hints)


def test_the_grader_owned_arguments_exist_in_torch() -> None:
    """The refusals must name real arguments, or they protect nothing."""
    for owner, names in GRADER_OWNED.items():
        classes = {
            "optimizer": [optimizers()["adam"]],
            "scheduler": [schedulers()["steplr"]],
        }.get(owner) or [schedulers()[owner]]
        for name in names:
            if name in ("params", "optimizer", "verbose"):
                continue  # the first argument, and an argument newer torch releases dropped
            assert any(name in inspect.signature(cls).parameters for cls in classes), name


# --- the optimizer, the schedule and the loss as built ----------------------------------------


def test_top_level_keys_reach_the_optimizers_that_take_them() -> None:
    model = nn.Linear(4, 3)
    sgd = make_optimizer(model, hp(optimizer="sgd", momentum=0.9, weight_decay=1e-4))
    assert (sgd.defaults["lr"], sgd.defaults["momentum"], sgd.defaults["weight_decay"]) == (
        0.01,
        0.9,
        1e-4,
    )
    rmsprop = make_optimizer(model, hp(optimizer="rmsprop", momentum=0.5))
    assert isinstance(rmsprop, torch.optim.RMSprop) and rmsprop.defaults["momentum"] == 0.5
    # adamw keeps the weight decay of 0 it always had unless HPARAMS sets one
    assert make_optimizer(model, hp(optimizer="adamw")).defaults["weight_decay"] == 0.0
    adam = make_optimizer(model, hp(optimizer_args={"betas": [0.8, 0.9], "amsgrad": True}))
    assert adam.defaults["betas"] == (0.8, 0.9) and adam.defaults["amsgrad"] is True
    # optimizer_args may set what the top level leaves at its default
    assert (
        make_optimizer(model, hp(optimizer_args={"weight_decay": 0.1})).defaults["weight_decay"]
        == 0.1
    )


@pytest.mark.parametrize("name", sorted(optimizers()))
def test_every_offered_optimizer_trains_or_is_refused_as_invalid(name: str) -> None:
    model, inputs, labels = small_problem()
    try:
        history = train_standard(model, inputs, labels, hp(optimizer=name, epochs=1), SEED).history
    except ContractError as exc:  # e.g. muon, for 2-D weights only
        assert str(exc).startswith(f"torch.optim.{type_name(name)} refused HPARAMS['optimizer']")
    else:
        assert history[0].loss is not None and math.isfinite(history[0].loss)


def test_what_torch_refuses_is_a_contract_error_naming_the_keys() -> None:
    with pytest.raises(ContractError) as info:
        make_optimizer(nn.Linear(4, 3), hp(optimizer_args={"betas": [1.5, 0.9]}))
    assert str(info.value) == (
        "torch.optim.Adam refused HPARAMS['optimizer'] with HPARAMS['optimizer_args']: "
        "Invalid beta parameter at index 0: 1.5"
    )
    optimizer = make_optimizer(nn.Linear(4, 3), hp(optimizer="adagrad"))
    cyclic = hp(scheduler="cycliclr", scheduler_args={"base_lr": 0.001, "max_lr": 0.1})
    with pytest.raises(ContractError, match=r"^torch.optim.lr_scheduler.CyclicLR refused "):
        make_scheduler(optimizer, cyclic, 10)


def test_the_plateau_schedule_maximises_validation_accuracy() -> None:
    optimizer = make_optimizer(nn.Linear(4, 3), hp())
    plateau = make_scheduler(optimizer, hp(scheduler="reducelronplateau", validation_split=0.1), 5)
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert plateau.mode == "max"


def test_mse_compares_softmax_probabilities_with_one_hot_labels() -> None:
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])
    probabilities = torch.softmax(scores, dim=1)
    one_hot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    expected = ((probabilities - one_hot) ** 2).mean()
    assert torch.allclose(mse_on_one_hot(scores, labels), expected)
    # the same for a model that ends in log_softmax
    assert torch.allclose(mse_on_one_hot(F.log_softmax(scores, dim=1), labels), expected)


# --- the loop ---------------------------------------------------------------------------------


def small_problem(n: int = 96) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A model with BatchNorm and dropout (both touch state the loop must keep deterministic)
    and inputs whose class is a fixed linear function of them."""
    make_deterministic(SEED, 1)
    data = torch.Generator().manual_seed(1)
    inputs = torch.randn(n, 8, generator=data)
    labels = (inputs @ torch.randn(8, 3, generator=data)).argmax(dim=1)
    model = nn.Sequential(
        nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3)
    )
    return model, inputs, labels


def previous_release_train(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, hp: HParams, seed: int
) -> None:
    """course-grader 0.2's standard loop before this vocabulary, verbatim but for the history."""
    params = model.parameters()
    if hp.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
        )
    elif hp.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
    loss_fn = F.nll_loss if hp.loss == "nll" else F.cross_entropy
    order = torch.Generator().manual_seed(seed)
    for _ in range(1, hp.epochs + 1):
        model.train()
        perm = torch.randperm(len(inputs), generator=order)
        shuffled_x, shuffled_y = inputs[perm], labels[perm]
        for start in range(0, len(perm), hp.batch_size):
            x = shuffled_x[start : start + hp.batch_size]
            y = shuffled_y[start : start + hp.batch_size]
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def trained_weights(
    train: Callable[..., object], hparams: HParams, log_softmax: bool = False
) -> dict[str, torch.Tensor]:
    model, inputs, labels = small_problem()
    if log_softmax:
        model = nn.Sequential(model, nn.LogSoftmax(dim=1))
    torch.manual_seed(SEED)  # as the child does between building and training
    train(model, inputs, labels, hparams, SEED)
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(
    "extra",
    [
        {"optimizer": "adam"},
        {"optimizer": "adam", "weight_decay": 1e-3, "loss": "nll"},
        {"optimizer": "adamw", "weight_decay": 0.01},
        {"optimizer": "adamw"},
        {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "lr": 0.05},
        {"optimizer": "sgd", "loss": "nll"},
        {"optimizer": "adam", "momentum": 0.9},  # ignored by adam, as it always was
    ],
)
def test_the_previous_vocabulary_trains_bit_identically_to_the_previous_release(
    extra: dict[str, Any],
) -> None:
    hparams = hp(**{"epochs": 2, **extra})
    nll = hparams.loss == "nll"
    now = trained_weights(train_standard, hparams, log_softmax=nll)
    before = trained_weights(previous_release_train, hparams, log_softmax=nll)
    assert_bit_identical(now, before)


NEW_OPTIONS = {
    "radam_steplr": {"optimizer": "radam", "scheduler": "steplr",
                     "scheduler_args": {"step_size": 1, "gamma": 0.5}},
    "adadelta_steplr": {"optimizer": "adadelta", "lr": 1.0, "scheduler": "steplr",
                        "scheduler_args": {"step_size": 1, "gamma": 0.7}},
    "nadam_args": {"optimizer": "nadam", "optimizer_args": {"betas": [0.85, 0.99]}},
    "rmsprop": {"optimizer": "rmsprop", "momentum": 0.5},
    "cosine": {"scheduler": "cosineannealinglr", "scheduler_args": {"T_max": 3}},
    "onecycle": {"optimizer": "sgd", "momentum": 0.9,
                 "scheduler": "onecyclelr", "scheduler_args": {"max_lr": 0.1}},
    "cyclic": {"optimizer": "sgd", "momentum": 0.9, "scheduler": "cycliclr",
               "scheduler_args": {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 3}},
    "plateau": {"scheduler": "reducelronplateau", "validation_split": 0.25,
                "scheduler_args": {"patience": 0, "factor": 0.5}},
    "mse": {"loss": "mse"},
    "validation": {"validation_split": 0.25},
    "early_stopping": {"validation_split": 0.25, "early_stopping": 1, "lr": 0.05},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NEW_OPTIONS))
def test_each_new_option_trains_to_identical_weights_run_to_run(name: str) -> None:
    hparams = hp(**{**NEW_OPTIONS[name], "epochs": 4})
    first = trained_weights(train_standard, hparams)
    second = trained_weights(train_standard, hparams)
    assert_bit_identical(first, second)
    # and the option did something: the weights differ from plain adam's
    plain = trained_weights(train_standard, hp(epochs=4))
    assert any(not torch.equal(first[k], plain[k]) for k in first if first[k].is_floating_point())


def test_a_step_schedule_decays_once_per_epoch() -> None:
    model, inputs, labels = small_problem()
    schedule = {"scheduler": "steplr", "scheduler_args": {"step_size": 2, "gamma": 0.5}}
    history = train_standard(model, inputs, labels, hp(epochs=5, **schedule), SEED).history
    assert [r.lr for r in history] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])


def test_one_cycle_steps_per_batch_and_ends_its_cycle_on_the_last_batch() -> None:
    model, inputs, labels = small_problem(96)  # 6 batches of 16 per epoch
    cycle = {"scheduler": "onecyclelr", "scheduler_args": {"max_lr": 0.1}}
    history = train_standard(model, inputs, labels, hp(epochs=3, **cycle), SEED).history
    lrs = [r.lr for r in history]
    assert lrs[0] > lrs[1] > lrs[2]  # past the peak (30% in) after the first epoch
    # after all 18 steps, the lr is OneCycleLR's final one: max_lr / 25 / 1e4
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4, rel=1e-3)


def test_validation_split_is_seeded_disjoint_and_in_order() -> None:
    kept, held = split_validation(100, 0.2, seed=0)
    assert len(held) == 20 and len(kept) == 80
    assert set(kept.tolist()) | set(held.tolist()) == set(range(100))
    assert kept.tolist() == sorted(kept.tolist()) and held.tolist() == sorted(held.tolist())
    again_kept, again_held = split_validation(100, 0.2, seed=0)
    assert torch.equal(held, again_held) and torch.equal(kept, again_kept)
    assert not torch.equal(held, split_validation(100, 0.2, seed=1)[1])
    with pytest.raises(ContractError, match=r"holds out 0 of 3 training examples"):
        split_validation(3, 0.1, seed=0)


def test_validation_accuracy_is_recorded_on_the_held_out_part() -> None:
    model, inputs, labels = small_problem()
    history = train_standard(model, inputs, labels, hp(validation_split=0.25), SEED).history
    assert all(r.val_accuracy is not None and 0 <= r.val_accuracy <= 1 for r in history)
    # and the training accuracy counts only the 72 kept examples
    assert all(round(r.accuracy * 72) == pytest.approx(r.accuracy * 72) for r in history)


class Frozen(nn.Module):
    """Outputs that do not depend on its weight: no gradient, so validation accuracy never
    changes, whatever the learning rate."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.register_buffer("prior", torch.tensor([0.0, 1.0, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weight * 0).expand(len(x), 3) + self.prior


def test_early_stopping_stops_after_patience_epochs_without_improvement() -> None:
    _, inputs, labels = small_problem()
    settings = hp(epochs=8, validation_split=0.25, early_stopping=2)
    trained = train_standard(Frozen(), inputs, labels, settings, SEED)
    assert [r.epoch for r in trained.history] == [1, 2, 3]
    assert trained.best_epoch == 1


def test_the_plateau_schedule_cuts_the_lr_when_validation_accuracy_stalls() -> None:
    _, inputs, labels = small_problem()
    plateau = {"scheduler": "reducelronplateau", "scheduler_args": {"patience": 0, "factor": 0.5}}
    settings = hp(epochs=4, lr=0.1, validation_split=0.25, **plateau)
    history = train_standard(Frozen(), inputs, labels, settings, SEED).history
    assert [r.lr for r in history] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_best_weights_are_restored_and_reported() -> None:
    model = nn.Linear(2, 2)
    best = BestWeights(patience=2)
    snapshots = []
    stops = []
    for epoch, accuracy in enumerate([0.5, 0.7, 0.6, 0.7], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        snapshots.append(model.weight.detach().clone())
        stops.append(best.stop_after(epoch, accuracy, model))
    assert stops == [False, False, False, True]  # a tie does not count as better
    assert best.restore(model, last_epoch=4) == 2
    assert torch.equal(model.weight, snapshots[1])


def test_best_epoch_is_none_when_the_last_epoch_was_best() -> None:
    model = nn.Linear(2, 2)
    best = BestWeights(patience=1)
    for epoch, accuracy in enumerate([0.5, 0.6], start=1):
        assert not best.stop_after(epoch, accuracy, model)
    assert best.restore(model, last_epoch=2) is None


# --- through the sandbox ------------------------------------------------------------------------

MODEL = """
import torch

def build_model(input_shape, num_classes):
    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], 16), torch.nn.BatchNorm1d(16),
                               torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(16, num_classes))
"""
GRADED = {
    "radam_steplr": {"epochs": 4, "batch_size": 16, "lr": 0.01, "optimizer": "radam",
                     "scheduler": "steplr", "scheduler_args": {"step_size": 1, "gamma": 0.5}},
    "mse": {"epochs": 4, "batch_size": 16, "lr": 0.01, "loss": "mse"},
    "early_stopping": {"epochs": 5, "batch_size": 16, "lr": 0.01, "validation_split": 0.25,
                       "early_stopping": 1},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GRADED))
def test_the_new_kinds_grade_ok_and_deterministically_in_the_sandbox(
    grade_source: GradeSource, name: str
) -> None:
    source = MODEL + f"\nHPARAMS = {GRADED[name]!r}\n"
    # verify_determinism trains twice, in two fresh children, and fails the row unless the
    # weights are bit-identical
    result = grade_source(source, verify_determinism=True)
    assert result.status is Status.OK, result.message
    records = [EpochRecord(**r) for r in result.history]
    assert result.epochs == len(records) <= GRADED[name]["epochs"]
    if name == "radam_steplr":
        assert [r.lr for r in records] == pytest.approx([0.01, 0.005, 0.0025, 0.00125])
    if name == "early_stopping":
        assert all(r.val_accuracy is not None for r in records)
        best = max(records, key=lambda r: (r.val_accuracy, -r.epoch))
        assert result.best_epoch == (None if best.epoch == records[-1].epoch else best.epoch)


def test_bad_vocabulary_is_an_invalid_row_through_the_sandbox(grade_source: GradeSource) -> None:
    hparams = {"epochs": 2, "batch_size": 16, "lr": 0.01, "optimizer": "adam",
               "optimizer_args": {"betas": [1.5, 0.9]}}  # fmt: skip
    result = grade_source(MODEL + f"\nHPARAMS = {hparams!r}\n")
    assert result.status is Status.INVALID
    assert result.message == (
        "train: torch.optim.Adam refused HPARAMS['optimizer'] with HPARAMS['optimizer_args']: "
        "Invalid beta parameter at index 0: 1.5"
    )
    result = grade_source(MODEL + "\nHPARAMS = {'epochs': 2, 'batch_size': 16, 'lr': 0.01, "
                          "'scheduler': 'steplr'}\n", student="other")  # fmt: skip
    assert result.status is Status.INVALID
    assert result.message == (
        "train: check hparams_valid failed: HPARAMS['scheduler_args'] must give 'step_size' for "
        "torch.optim.lr_scheduler.StepLR"
    )


def type_name(name: str) -> str:
    return optimizers()[name].__name__
