"""Tutorial-style training scripts, turned into submissions with the fewest changes a student
makes, meet the contract's edges: each friction real scripts ran into ends in a message that
says what happened and what to do, pinned here as the student reads it."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from support.cli import invoke
from support.course import HAR
from support.grading import GOOD_HAR, GradeSource
from support.paths import ASSIGNMENTS, REPO

from grader.core.results import Status
from grader.core.spec import Spec
from grader.publish.diagnosis import diagnose
from grader.publish.reports import build_report, render_html, render_markdown

# The PyTorch examples' MNIST script keeps its per-epoch `train`, as most tutorials do.
TUTORIAL_TRAIN = """
import torch
import torch.nn.functional as F

HPARAMS = {"epochs": 2, "batch_size": 32, "lr": 0.01}


def build_model(input_shape, num_classes):
    return torch.nn.Linear(input_shape[0], num_classes)


def train(model, loader, criterion, optimizer, epoch):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
"""


def test_a_tutorial_train_is_named_with_the_contracts_signature(
    grade_source: GradeSource,
) -> None:
    result = grade_source(TUTORIAL_TRAIN)
    assert result.status is Status.INVALID
    assert result.message == (
        "train: check train_signature failed: your train(model, loader, criterion, optimizer, "
        "epoch) on line 12 is not the grader's train(model, train_set, hparams[, "
        "report_epoch]), which it calls to train your model; rename yours (e.g. train_epoch) "
        "and call it from a train(model, train_set, hparams)"
    )


def test_a_train_with_optional_extras_keeps_the_contract(grade_source: GradeSource) -> None:
    source = GOOD_HAR + (
        "\ndef train(model, train_set, hparams, report_epoch=None, log_interval=10):\n    pass\n"
    )
    assert grade_source(source).status is Status.OK


# A PCA fitted in train() and kept in a plain attribute: the saved state_dict lacks it.
PCA_IN_AN_ATTRIBUTE = """
import torch
import torch.nn.functional as F

HPARAMS = {"epochs": 5, "batch_size": 120, "lr": 0.01}


class Net(torch.nn.Module):
    def __init__(self, features, num_classes):
        super().__init__()
        self.projection = torch.zeros(features, 64)  # filled by train()
        self.head = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, num_classes)
        )

    def forward(self, x):
        return self.head(x @ self.projection)


def build_model(input_shape, num_classes):
    return Net(input_shape[0], num_classes)


def train(model, train_set, hparams):
    x, y = train_set.tensors
    model.projection = torch.pca_lowrank(x, q=64)[2] * 10
    optimizer = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    for step in range(hparams["epochs"] * 30):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
"""


def test_state_kept_outside_the_state_dict_is_named(grade_source: GradeSource) -> None:
    result = grade_source(PCA_IN_AN_ATTRIBUTE)
    assert result.status is Status.OK
    assert result.trained_accuracy is not None and result.trained_accuracy > 0.9
    assert result.train_accuracy is not None and result.train_accuracy < 0.3
    (finding,) = diagnose(result, None)
    assert finding.kind == "state_not_saved"
    assert finding.evidence.startswith(
        f"Right after train() the model scored {result.trained_accuracy * 100:.2f}% on a "
        "sample of its training data, but the model the grader evaluated scored "
        f"{result.train_accuracy * 100:.2f}% on the training data. The grader saves only "
        "the model's state_dict"
    )
    assert finding.advice[0] == (
        "keep fitted tensors in buffers: self.register_buffer('mean', torch.zeros(n)) in "
        "__init__, then fill them in train() with self.mean.copy_(...)"
    )


def test_the_same_pca_in_a_buffer_is_kept(grade_source: GradeSource) -> None:
    source = (
        PCA_IN_AN_ATTRIBUTE.replace(
            "self.projection = torch.zeros(features, 64)",
            "self.register_buffer('projection', torch.zeros(features, 64))",
        )
        .replace("model.projection = ", "model.projection.copy_(")
        .replace(" * 10\n", " * 10)\n")
    )
    result = grade_source(source)
    assert result.train_accuracy is not None and result.train_accuracy > 0.9
    assert result.trained_accuracy is not None
    assert abs(result.trained_accuracy - result.train_accuracy) < 0.05
    assert all(f.kind != "state_not_saved" for f in diagnose(result, None))


# The PyTorch examples' own settings beside the contract's, one of them misspelt.
OWN_KEYS = """
import torch
import torch.nn.functional as F

HPARAMS = {"epochs": 2, "batch_size": 32, "lr": 1.0, "gamma": 0.7, "log_interval": 10,
           "batchsize": 64}


def build_model(input_shape, num_classes):
    return torch.nn.Linear(input_shape[0], num_classes)


def train(model, train_set, hparams):
    optimizer = torch.optim.Adadelta(model.parameters(), lr=hparams["lr"])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=hparams["gamma"])
    loader = torch.utils.data.DataLoader(train_set, batch_size=hparams["batch_size"])
    for epoch in range(hparams["epochs"]):
        for batch, (x, y) in enumerate(loader):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            if batch % hparams["log_interval"] == 0:
                print(f"epoch {epoch} batch {batch}")
        scheduler.step()
"""


def test_students_own_hparams_reach_their_train_and_the_report(
    grade_source: GradeSource,
) -> None:
    result = grade_source(OWN_KEYS)
    assert result.status is Status.OK, result.message
    assert result.own_hparams == {"gamma": "0.7", "log_interval": "10", "batchsize": "64"}
    warning = (
        "HPARAMS['batchsize'] looks like a misspelling of 'batch_size': the grader reads "
        "'batch_size' (your own keys reach your train() unchanged)"
    )
    assert result.hparam_warnings == [warning]
    markdown = render_markdown(build_report(result, HAR, pictures=False))
    assert (
        "| your own HPARAMS (passed to your train() as they are) | gamma = 0.7, "
        "log\\_interval = 10, batchsize = 64 |"
    ) in markdown
    assert "- Warning: HPARAMS\\['batchsize'\\] looks like a misspelling of" in markdown
    html = render_html(build_report(result, HAR, pictures=False))
    assert "gamma = 0.7, log_interval = 10, batchsize = 64" in html


def test_a_misspelt_required_key_is_named(grade_source: GradeSource) -> None:
    source = OWN_KEYS.replace('"epochs": 2', '"epoch": 2')
    result = grade_source(source)
    assert result.message == (
        "train: check hparams_valid failed: HPARAMS is missing 'epochs' "
        "(is your 'epoch' meant to be it?)"
    )


# An honest loop, slower than its CPU-time budget allows: one cheap epoch, then spinning.
SPINS_AFTER_AN_EPOCH = (
    GOOD_HAR
    + """
HPARAMS = {"epochs": 5, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}


def train(model, train_set, hparams, report_epoch):
    report_epoch(loss=1.0)
    while True:
        pass
"""
)


def _cpu_budget(spec: Spec, cpu_seconds: float, timeout_seconds: float) -> Spec:
    budgets = replace(spec.budgets, cpu_seconds=cpu_seconds, timeout_seconds=timeout_seconds)
    return replace(spec, budgets=budgets)


def test_a_cpu_time_budget_counts_the_epochs_done(
    grade_source: GradeSource, har_spec: Spec
) -> None:
    result = grade_source(SPINS_AFTER_AN_EPOCH, spec=_cpu_budget(har_spec, 10, 120))
    assert (result.status, result.stage) == (Status.TIMEOUT, "training")
    assert result.message == (
        "train used up its 10 s of CPU time while training, after 1 of 5 epochs "
        "(the budget allows about 2 s of CPU time an epoch)"
    )


def test_a_sleeping_job_meets_the_wall_clock_backstop(
    grade_source: GradeSource, har_spec: Spec
) -> None:
    spin = "while True:\n        pass"
    source = SPINS_AFTER_AN_EPOCH.replace(spin, "import time; time.sleep(600)")
    result = grade_source(source, spec=_cpu_budget(har_spec, 100, 12))
    assert result.status is Status.TIMEOUT
    assert result.message.startswith("train took longer than 12 s while training, after 1 of 5")


def test_what_was_printed_before_a_hang_is_in_the_output_tail(grade_source: GradeSource) -> None:
    source = GOOD_HAR + (
        "\ndef train(model, train_set, hparams):\n"
        "    print('Train Epoch: 1 [0/120 (0%)]\\tLoss: 1.791759')\n"
        "    import time\n"
        "    time.sleep(600)\n"
    )
    result = grade_source(source, timeout_seconds=12)
    assert result.status is Status.TIMEOUT
    assert "Train Epoch: 1 [0/120 (0%)]\tLoss: 1.791759" in result.log_tail


# What tutorials do that the handouts now allow: a progress bar, torchvision's transforms,
# a checkpoint saved to the working folder.
TUTORIAL_HABITS = (
    GOOD_HAR
    + """
import torch.nn.functional as F
from torchvision import transforms
from tqdm import tqdm


def train(model, train_set, hparams):
    loader = torch.utils.data.DataLoader(train_set, batch_size=hparams["batch_size"])
    optimizer = torch.optim.Adam(model.parameters(), lr=hparams["lr"])
    noise = transforms.Compose([transforms.Lambda(lambda x: x + 0.01 * torch.randn_like(x))])
    for epoch in range(hparams["epochs"]):
        for x, y in tqdm(loader, desc=f"epoch {epoch}"):
            optimizer.zero_grad()
            F.cross_entropy(model(noise(x)), y).backward()
            optimizer.step()
        torch.save(model.state_dict(), "checkpoint.pt")
"""
)


def test_tqdm_torchvision_transforms_and_a_checkpoint_grade_ok(
    grade_source: GradeSource,
) -> None:
    result = grade_source(TUTORIAL_HABITS)
    assert result.status is Status.OK, result.message
    # a loop of their own that does not call report_epoch: the report says how to get curves
    markdown = render_markdown(build_report(result, HAR, pictures=False))
    assert (
        "No per-epoch record: a custom train() can report each epoch by taking a report_epoch "
        "parameter and calling report_epoch(loss=..., accuracy=...) once per epoch: the "
        "starter ends with such a loop, commented out (see the handout)."
    ) in markdown


def _starter_loop(name: str) -> str:
    """The starter's commented train() example, uncommented."""
    lines = (REPO / "starter" / f"{name}.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("Uncomment to try it:"))
    block = itertools.takewhile(lambda line: line.startswith("#"), lines[start + 2 :])
    return "\n".join(line.removeprefix("#").removeprefix(" ") for line in block)


@pytest.mark.parametrize("name", ["har", "mnist"])
def test_the_starters_train_example_draws_curves(grade_source: GradeSource, name: str) -> None:
    source = GOOD_HAR + "\nimport torch.nn.functional as F\n\n" + _starter_loop(name) + "\n"
    result = grade_source(source)
    assert result.status is Status.OK, result.message
    assert [record["epoch"] for record in result.history] == [1, 2]
    assert all(record["loss"] is not None for record in result.history)


def _handout_buffers_example() -> str:
    """The HAR handout's example of state kept in buffers, as the student copies it."""
    text = (REPO / "course" / "handouts" / "har.md").read_text()
    after = text.split("### Everything the model needs must be in its state_dict", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_handouts_buffers_example_keeps_its_state(grade_source: GradeSource) -> None:
    example = _handout_buffers_example().replace(
        "    ...  # then train as usual\n",
        "    optimizer = torch.optim.Adam(model.parameters(), lr=hparams['lr'])\n"
        "    x, y = train_set.tensors\n"
        "    for step in range(hparams['epochs'] * 30):\n"
        "        optimizer.zero_grad()\n"
        "        torch.nn.functional.cross_entropy(model(x), y).backward()\n"
        "        optimizer.step()\n",
    )
    source = (
        "import torch\nfrom torch import nn\n\n"
        'HPARAMS = {"epochs": 5, "batch_size": 120, "lr": 0.01}\n\n'
        + example
        + "\n\ndef build_model(input_shape, num_classes):\n"
        "    return Net(input_shape[0], num_classes)\n"
    )
    result = grade_source(source)
    assert result.status is Status.OK, result.message
    assert result.trained_accuracy is not None and result.train_accuracy is not None
    assert result.trained_accuracy > 0.9
    assert abs(result.trained_accuracy - result.train_accuracy) < 0.05
    assert all(f.kind != "state_not_saved" for f in diagnose(result, None))


def test_grader_check_lists_own_hparams_and_warns_of_a_misspelling(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    source = tmp_path / "me" / "har.py"
    source.parent.mkdir()
    source.write_text(OWN_KEYS)
    result = invoke(
        "check", source, "--assignments", ASSIGNMENTS, "--data-dir", tiny_data_dir,
        "--cache-dir", tmp_path / "cache", "--timeout", "60",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())  # as wrapped at any width
    assert (
        "your own HPARAMS (passed to your train()): gamma = 0.7, log_interval = 10, "
        "batchsize = 64 warning: HPARAMS['batchsize'] looks like a misspelling of 'batch_size': "
        "the grader reads 'batch_size' (your own keys reach your train() unchanged) diagnosis:"
    ) in said
