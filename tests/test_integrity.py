"""The integrity audit against submissions written as a determined student would write them.

Each hostile submission below is built from the tiny test data's public labels, the way a
student would build one from MNIST's or UCI HAR's published test labels. Which signals catch
which (thresholds from the HAR spec):

- an exact hash lookup in the source: agreement, perturbed drop and the negative gap;
- a lookup robust to small changes (nearest stored test input): the negative gap;
- test inputs hidden in the weights, submitted in load mode: agreement, perturbed drop, gap;
- a robust lookup of train and test inputs alike (no negative gap): the private hold-out.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support.data import HAR_FEATURES, har_text
from support.grading import GOOD_HAR, GradeSource
from support.lookups import EXACT_LOOKUP, HIDDEN_IN_WEIGHTS, lookup_table

from grader.core.results import Mode, Status
from grader.core.spec import Holdout, Spec
from grader.data.cache import PreparedData
from grader.data.graded import for_spec
from grader.data.holdout import HoldoutData, load_holdout, stage

# The nearest stored input (by its first features, to keep the source small) within a radius
# that small changes never leave: survives the changed copies.
ROBUST_LOOKUP = """
import torch

HPARAMS = {"epochs": 1, "batch_size": 32, "lr": 0.01, "optimizer": "adam"}
KEYS = torch.tensor(%s)
LABELS = torch.tensor(%s)


class Lookup(torch.nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.linear = torch.nn.Linear(features, classes)

    def forward(self, x):
        out = self.linear(x)
        if self.training:
            return out
        distance, nearest = torch.cdist(x[:, : KEYS.shape[1]], KEYS).min(dim=1)
        found = torch.nn.functional.one_hot(LABELS[nearest], out.shape[1]) * 100.0
        return torch.where((distance < 0.5)[:, None], found, out)


def build_model(input_shape, num_classes):
    return Lookup(input_shape[0], num_classes)
"""


def _test_set(data: PreparedData) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(data.load("test_inputs")), np.asarray(data.load("test_labels"))


def _rounded(array: np.ndarray) -> str:
    return repr(np.round(array[:, :20], 3).tolist())


def test_an_honest_submission_passes_the_audit(grade_source: GradeSource) -> None:
    result = grade_source(GOOD_HAR)
    assert result.status is Status.OK, result.message
    assert result.agreement is not None and result.agreement >= 0.99
    assert result.perturbed_drop is not None and abs(result.perturbed_drop) <= 0.01
    assert result.holdout_accuracy is None
    assert set(result.targets) == {"A", "B"}


def test_an_exact_hash_lookup_is_flagged(grade_source: GradeSource, tiny_har: PreparedData) -> None:
    source = EXACT_LOOKUP % repr(lookup_table(*_test_set(tiny_har)))
    result = grade_source(source)
    assert result.status is Status.FLAGGED
    assert result.test_accuracy == 1.0
    assert result.targets == {}
    assert result.agreement is not None and result.agreement < 0.5
    assert "agree" in result.message and "falls by" in result.message
    assert "above train accuracy" in result.message


def test_a_lookup_robust_to_small_changes_is_caught_by_the_negative_gap(
    grade_source: GradeSource, tiny_har: PreparedData
) -> None:
    inputs, labels = _test_set(tiny_har)
    result = grade_source(ROBUST_LOOKUP % (_rounded(inputs), repr(labels.tolist())))
    assert result.status is Status.FLAGGED
    assert result.agreement == 1.0 and result.perturbed_drop == 0.0
    assert result.message.startswith("integrity audit: test accuracy 100.00% is ")
    assert "above train accuracy" in result.message


def test_test_inputs_hidden_in_submitted_weights_are_flagged(
    grade_source: GradeSource, tiny_har: PreparedData
) -> None:
    import torch
    from safetensors.torch import save

    inputs, labels = _test_set(tiny_har)
    n = len(labels)
    weights = {
        "linear.weight": torch.zeros(6, HAR_FEATURES),
        "linear.bias": torch.zeros(6),
        "keys": torch.from_numpy(inputs.astype(np.float32)),
        "answers": torch.from_numpy(labels.astype(np.int64)),
    }
    result = grade_source(HIDDEN_IN_WEIGHTS % (n, n), mode=Mode.LOAD, weights=save(weights))
    assert result.status is Status.FLAGGED
    assert result.test_accuracy == 1.0
    assert result.agreement is not None and result.agreement < 0.5


def _holdout_folder(root: Path, inputs: np.ndarray, labels: np.ndarray) -> Path:
    folder = root / "holdout"
    (folder / "test").mkdir(parents=True)
    (folder / "test" / "X_test.txt").write_bytes(har_text(inputs))
    (folder / "test" / "y_test.txt").write_text("".join(f"{label + 1}\n" for label in labels))
    return folder


def test_memorising_train_and_test_alike_is_caught_by_the_holdout(
    grade_source: GradeSource, tiny_har: PreparedData, har_spec: Spec, tmp_path: Path
) -> None:
    inputs = np.concatenate([tiny_har.load("train_inputs"), tiny_har.load("test_inputs")])
    labels = np.concatenate([tiny_har.load("train_labels"), tiny_har.load("test_labels")])
    source = ROBUST_LOOKUP.replace("        if self.training:\n            return out\n", "")
    fresh = np.random.default_rng(7).uniform(-1, 1, (60, HAR_FEATURES))
    holdout = load_holdout("uci_har", _holdout_folder(tmp_path, fresh, np.arange(60) % 6))
    spec = dataclasses.replace(har_spec, holdout=Holdout(folder="holdout"))
    result = grade_source(
        source % (_rounded(inputs), repr(labels.tolist())), spec=spec, holdout=holdout
    )
    assert result.status is Status.FLAGGED
    assert result.gap == 0.0 and result.agreement == 1.0
    assert result.holdout_accuracy is not None and result.holdout_accuracy < 0.5
    assert "hold-out accuracy" in result.message


def test_an_honest_submission_is_not_flagged_by_the_holdout(
    grade_source: GradeSource, tiny_har: PreparedData, har_spec: Spec, tmp_path: Path
) -> None:
    # The same distribution as the test set (here, the same rows): no drop to see.
    holdout = load_holdout("uci_har", _holdout_folder(tmp_path, *_test_set(tiny_har)))
    spec = dataclasses.replace(har_spec, holdout=Holdout(folder="holdout"))
    result = grade_source(GOOD_HAR, spec=spec, holdout=holdout)
    assert result.holdout_accuracy is not None
    assert result.status is Status.OK, result.message


def test_a_carved_hold_out_catches_a_memoriser_of_train_and_test(
    grade_source: GradeSource, tiny_har: PreparedData, har_spec: Spec, tmp_path: Path
) -> None:
    """It memorises every row it can see (its train_set and the public test set); the carved
    rows it never saw score only what its model learned."""
    spec = dataclasses.replace(har_spec, holdout=Holdout(from_training=0.25, seed=1))
    graded = for_spec(spec, tiny_har, tmp_path, tmp_path / "cache")
    assert graded.holdout is not None and graded.data.train_size == 90
    seen = graded.data
    inputs = np.concatenate([seen.load("train_inputs"), seen.load("test_inputs")])
    labels = np.concatenate([seen.load("train_labels"), seen.load("test_labels")])
    source = ROBUST_LOOKUP.replace("        if self.training:\n            return out\n", "")
    result = grade_source(
        source % (_rounded(inputs), repr(labels.tolist())),
        spec=spec,
        data=graded.data,
        holdout=graded.holdout,
    )
    assert result.status is Status.FLAGGED, result.message
    assert result.test_accuracy == 1.0 and result.gap == 0.0
    assert result.holdout_accuracy is not None and result.holdout_accuracy < 0.5
    assert result.holdout == "30 training rows (25%, seed 1) kept from students"


def test_an_honest_row_with_a_carved_hold_out_is_not_flagged(
    grade_source: GradeSource, tiny_har: PreparedData, har_spec: Spec, tmp_path: Path
) -> None:
    spec = dataclasses.replace(har_spec, holdout=Holdout(from_training=0.25))
    graded = for_spec(spec, tiny_har, tmp_path, tmp_path / "cache")
    result = grade_source(GOOD_HAR, spec=spec, data=graded.data, holdout=graded.holdout)
    assert result.status is Status.OK, result.message
    assert result.holdout_accuracy is not None


def test_a_reviewed_row_is_ok_with_its_targets_and_says_what_the_audit_saw(
    grade_source: GradeSource, tiny_har: PreparedData, tmp_path: Path
) -> None:
    from grader.core.submission import from_file

    source = EXACT_LOOKUP % repr(lookup_table(*_test_set(tiny_har)))
    path = tmp_path / "submissions" / "mallory" / "har.py"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(source))
    content_hash = from_file(path, "har", 1 << 20).content_hash
    cleared = frozenset({("mallory", content_hash)})
    result = grade_source(source, student="mallory", reviewed=cleared)
    assert result.status is Status.OK
    assert set(result.targets) == {"A", "B"}
    assert result.message.startswith("integrity audit: ") and result.message.endswith("(reviewed)")
    other = grade_source(source, student="mallory", reviewed=frozenset({("mallory", "0" * 64)}))
    assert other.status is Status.FLAGGED


@pytest.mark.parametrize("gz", [False, True])
def test_an_mnist_holdout_is_read_from_idx_files(tmp_path: Path, gz: bool) -> None:
    import gzip
    import struct

    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    files = {
        "t10k-images-idx3-ubyte": struct.pack(">IIII", 0x0803, 3, 28, 28) + images.tobytes(),
        "t10k-labels-idx1-ubyte": struct.pack(">II", 0x0801, 3) + bytes([4, 0, 9]),
    }
    for name, payload in files.items():
        if gz:
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (tmp_path / name).write_bytes(payload)
    holdout = load_holdout("mnist", tmp_path)
    assert holdout.inputs.shape == (3, 1, 28, 28)
    assert (holdout.inputs[:, 0] == images).all()
    assert holdout.labels.tolist() == [4, 0, 9]
    assert len(holdout.checksum) == 64


def test_a_holdout_staged_for_slurm_nodes_reads_back_the_same_and_private(tmp_path: Path) -> None:
    holdout = HoldoutData(np.arange(12.0).reshape(2, 6), np.array([3, 1]), "c" * 64, "two rows")
    staged = stage(holdout, tmp_path / "holdout")
    assert staged.path.stat().st_mode & 0o777 == 0o600
    assert stage(holdout, tmp_path / "holdout") == staged  # staged once per set
    again = staged.load()
    assert (again.inputs == holdout.inputs).all() and again.inputs.dtype == holdout.inputs.dtype
    assert (again.labels == holdout.labels).all()
    assert again.checksum == holdout.checksum and again.description == "two rows"


# --- the audit's pieces, without a sandbox ---------------------------------------------------


def test_mixing_hides_the_parts_and_they_come_back_in_order() -> None:
    from grader.core.spec import Audit
    from grader.jobs.audit import mix

    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (20, 1, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (50, 1, 28, 28), dtype=np.uint8)
    holdout = np.zeros((7, 1, 28, 28), dtype=np.uint8)
    mixed = mix(train, test, holdout, Audit(changed_values=3), seed=0)
    assert mixed.inputs.shape == (177, 1, 28, 28) and mixed.sizes == (20, 50, 50, 50, 7)
    assert mixed.order[:20].tolist() != list(range(20))  # not training rows first
    rows = np.arange(177)[mixed.order]  # each position's row of the unshuffled stack
    parts = mixed.parts(rows)
    assert parts.train.tolist() == list(range(20)) and mixed.train_rows.tolist() == list(range(20))
    assert parts.test.tolist() == list(range(20, 70))
    assert parts.copies.tolist() == list(range(70, 120))
    assert parts.repeats.tolist() == list(range(120, 170))
    assert parts.holdout.tolist() == list(range(170, 177))
    unshuffled = mixed.inputs[np.argsort(mixed.order)]
    assert (unshuffled[:20] == train).all() and (unshuffled[20:70] == test).all()
    assert (unshuffled[120:170] == test[mixed.repeated]).all()  # the same bytes, twice
    changed = unshuffled[70:120].astype(int) - test
    assert ((changed != 0).reshape(50, -1).sum(axis=1) == 3).all()  # three pixels each,
    assert np.abs(changed).max() == 1  # by one grey level
    again = mix(train, test, holdout, Audit(changed_values=3), seed=0)
    assert (again.inputs == mixed.inputs).all() and (again.order == mixed.order).all()


def test_a_large_training_set_is_sampled_to_the_test_sets_size_by_the_seed() -> None:
    from grader.jobs.audit import FULL_TRAIN_ROWS, train_sample

    assert train_sample(7352, 2947, seed=0).tolist() == list(range(7352))  # HAR: whole
    rows = train_sample(60_000, 10_000, seed=0)  # MNIST: a sample
    assert len(rows) == len(set(rows.tolist())) == max(10_000, FULL_TRAIN_ROWS)
    assert (np.diff(rows) > 0).all() and rows[-1] < 60_000
    assert (train_sample(60_000, 10_000, seed=0) == rows).all()
    assert (train_sample(60_000, 10_000, seed=1) != rows).any()


def test_float_data_moves_by_the_noise_and_saturated_pixels_move_down() -> None:
    from grader.core.spec import Audit
    from grader.jobs.audit import perturb

    rng = np.random.default_rng(1)
    features = np.zeros((4, 561), dtype=np.float32)
    moved = perturb(features, Audit(changed_values=10, noise=0.001), rng) - features
    assert ((moved != 0).sum(axis=1) == 10).all()
    assert np.allclose(np.abs(moved[moved != 0]), 0.001)
    white = np.full((2, 1, 28, 28), 255, dtype=np.uint8)
    assert (perturb(white, Audit(changed_values=2), rng) >= 254).all()


def test_signals_name_their_numbers() -> None:
    from grader.core.spec import Audit
    from grader.jobs.scoring import AuditFigures, audit_signals

    quiet = AuditFigures(agreement=0.999, perturbed_drop=0.001, holdout_accuracy=0.97)
    assert audit_signals(quiet, 0.98, 0.99, (10_000, 50_000), Audit()) == []
    # On 60 examples chance alone moves an accuracy by several points: no signal.
    assert audit_signals(quiet, 0.25, 0.2, (60, 60), Audit()) == []
    loud = AuditFigures(agreement=0.9, perturbed_drop=0.08, holdout_accuracy=0.9)
    assert audit_signals(loud, 1.0, 0.92, (10_000, 50_000), Audit()) == [
        "predictions on imperceptibly changed test inputs agree 90.00% with those on the "
        "originals (at least 99.00% expected)",
        "test accuracy falls by 8.0 points on the changed inputs (at most 1.0 points expected)",
        "test accuracy 100.00% is 8.0 points above train accuracy 92.00% "
        "(at most 2.0 points expected)",
        "hold-out accuracy 90.00% is 10.0 points below test accuracy (at most 3.3 points expected)",
    ]


def test_a_noisy_model_is_judged_against_its_own_agreement() -> None:
    from grader.core.spec import Audit
    from grader.jobs.scoring import AuditFigures, audit_signals, noise_note

    # HAR's dropout-always-on network: copies agree as often as the model agrees with itself.
    noisy = AuditFigures(0.9001, 0.004, None, self_agreement=0.9, repeats=2000)
    assert audit_signals(noisy, 0.9, 0.91, (2947, 0), Audit()) == []
    assert "not deterministic at evaluation" in noise_note(noisy, Audit())
    assert "F.dropout" in noise_note(noisy, Audit())
    # Well below its own agreement: still a signal, against the lowered bar.
    cheat = AuditFigures(0.5, 0.3, None, self_agreement=0.9, repeats=2000)
    fired = audit_signals(cheat, 0.9, 0.91, (2947, 0), Audit())
    assert fired[0].startswith("predictions on imperceptibly changed test inputs agree 50.00%")
    assert "(at least 86.72% expected)" in fired[0] and "falls by 30.0 points" in fired[1]
    steady = AuditFigures(0.999, 0.0, None, self_agreement=1.0, repeats=2000)
    assert noise_note(steady, Audit()) == ""


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[[reviewed]]\nstudent = 'a'\n", "key 'reviewed[0].content_hash' must be a non-empty"),
        ("[[reviewed]]\nstudent = 'a'\ncontent_hash = 'h'\nwho = 1\n", "'reviewed[0].who' is not"),
        ("reviewed = 3\n", "expected only [[reviewed]] and [[pair]] tables"),
        ("[[reviewed]\n", "not valid TOML"),
    ],
)
def test_review_file_errors_name_the_file_and_key(tmp_path: Path, text: str, error: str) -> None:
    from grader.core.review import ReviewError, load_reviewed

    path = tmp_path / "reviewed.toml"
    path.write_text(text)
    with pytest.raises(ReviewError) as caught:
        load_reviewed(path)
    assert str(caught.value).startswith(f"{path}: ") and error in str(caught.value)


def test_review_file_lists_pairs_and_may_be_absent(tmp_path: Path) -> None:
    from grader.core.review import load_reviewed

    path = tmp_path / "reviewed.toml"
    assert load_reviewed(path) == frozenset()
    path.write_text("[[reviewed]]\nstudent = 'a'\ncontent_hash = 'h'\nnote = 'asked'\n")
    assert load_reviewed(path) == frozenset({("a", "h")})


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ("[audit]\nmin_agreement = 2\n", "key 'audit.min_agreement' must be a fraction in [0, 1]"),
        ("[audit]\nchanged_values = 0\n", "key 'audit.changed_values' must be positive"),
        ("[audit]\nnoise = -1\n", "key 'audit.noise' must be a finite number, 0 or more"),
        ("[audit]\nlookup = 1\n", "key 'audit.lookup' is not a known setting"),
        (
            "[holdout]\nqmnist = true\n",
            "key 'holdout.qmnist' is for MNIST only (QMNIST holds extra MNIST digits)",
        ),
        (
            "[holdout]\nfrom_training = 0.6\n",
            "key 'holdout.from_training' must be a fraction from 0 to 0.5",
        ),
        ("[holdout]\nseed = -1\n", "key 'holdout.seed' must be 0 or more"),
        ("[holdout]\nfile = 'x'\n", "key 'holdout.file' is not a known setting"),
    ],
)
def test_audit_and_holdout_settings_are_checked(tmp_path: Path, table: str, error: str) -> None:
    from grader.core.spec import SpecError, load_spec

    text = (Path(__file__).parents[1] / "grader" / "assignments" / "har.toml").read_text()
    text = text.replace("[audit]", "[unused_audit]").split("[unused_audit]")[0]
    path = tmp_path / "har.toml"
    path.write_text(text + table)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == f"{path}: {error}"


def test_a_holdout_folder_that_is_missing_is_a_data_error(tmp_path: Path) -> None:
    from grader.data.errors import DataError

    with pytest.raises(DataError, match=r"hold-out folder .* does not exist"):
        load_holdout("mnist", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte \(or \.gz\) is missing"):
        load_holdout("mnist", tmp_path)
