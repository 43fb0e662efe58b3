"""Assignment specs: the real course specs load, and every malformed spec is one pinned line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from grader.core.spec import Budgets, Grading, SpecError, Target, load_spec, load_specs

COURSE = Path(__file__).resolve().parents[1] / "course" / "assignments"

ASSIGNMENT = """\
[assignment]
name = "toy"
title = "Toy problem"
dataset = "mnist"
input_shape = [4]
num_classes = 3
"""


def write(folder: Path, text: str, name: str = "toy.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the real course specs ------------------------------------------------------------------


def test_course_specs_load_with_their_targets() -> None:
    specs = load_specs(COURSE)
    assert sorted(specs) == ["har", "mnist"]
    for spec in specs.values():
        a, b = spec.targets
        assert (a.name, a.min_test_accuracy, a.max_gap) == ("A", 0.96, 0.02)
        assert (b.name, b.min_test_accuracy, b.max_gap) == ("B", 0.975, None)


def test_course_specs_name_har_activities_and_give_points() -> None:
    specs = load_specs(COURSE)
    har, mnist = specs["har"], specs["mnist"]
    assert har.assignment.class_names == (
        "walking", "upstairs", "downstairs", "sitting", "standing", "laying")  # fmt: skip
    assert [har.assignment.class_label(i) for i in (0, 5)] == ["walking", "laying"]
    assert [mnist.assignment.class_label(i) for i in range(10)] == [str(d) for d in range(10)]
    for spec in specs.values():
        assert [t.points for t in spec.targets] == [5.0, 5.0]
        assert (spec.gradescope.check_points, spec.gradescope.visibility) == (0.0, "visible")


def test_course_specs_have_the_documented_shapes_and_budgets() -> None:
    specs = load_specs(COURSE)
    har, mnist = specs["har"], specs["mnist"]
    assert (har.assignment.dataset, har.assignment.input_shape, har.assignment.num_classes) == (
        "uci_har",
        (561,),
        6,
    )
    assert (
        mnist.assignment.dataset,
        mnist.assignment.input_shape,
        mnist.assignment.num_classes,
    ) == ("mnist", (1, 28, 28), 10)
    assert (har.budgets.max_epochs, mnist.budgets.max_epochs) == (100, 10)
    assert isinstance(har.budgets.timeout_seconds, float)
    # CPU time is the budget; wall clock a backstop three times as long
    assert (har.budgets.cpu_seconds, har.budgets.timeout_seconds) == (600.0, 1800.0)
    assert (mnist.budgets.cpu_seconds, mnist.budgets.timeout_seconds) == (900.0, 2700.0)
    everything = ("logistic_regression", "linear_svm", "random_forest")
    assert har.grading == Grading(
        seed=0, seeds=(0, 1, 2), baselines=everything, threads=1, verify_determinism=False
    )
    assert mnist.grading.all_seeds == (0,) and mnist.grading.baselines == everything


def test_digest_is_the_sha256_of_the_file_and_tracks_edits(tmp_path: Path) -> None:
    path = write(tmp_path, ASSIGNMENT)
    first = load_spec(path)
    assert first.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.path == path
    path.write_text(ASSIGNMENT + "\n[budgets]\nmax_epochs = 3\n", encoding="utf-8")
    assert load_spec(path).digest != first.digest


def test_minimal_spec_gets_the_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, ASSIGNMENT))
    assert spec.name == "toy"
    assert spec.budgets == Budgets()
    assert spec.grading == Grading()
    assert spec.targets == ()


# --- one-line errors ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: cannot read spec (No such file or directory)"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name = \n", "not valid TOML (Invalid value (at line 1, column 8))"),
        (
            "[assignment\n",
            "not valid TOML (Expected ']' at the end of a table declaration "
            "(at line 1, column 12))",
        ),
        ("a = 1\na = 2\n", "not valid TOML (Cannot overwrite a value (at line 2, column 6))"),
    ],
)
def test_invalid_toml(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: {problem}"


def test_non_utf8_spec(tmp_path: Path) -> None:
    path = tmp_path / "toy.toml"
    path.write_bytes(b"x = '\xff'\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (
        f"{path}: not valid TOML ('utf-8' codec can't decode byte 0xff in "
        "position 5: invalid start byte)"
    )


BAD_SPECS = [
    # unknown keys, at every level
    (ASSIGNMENT + "colour = 'red'\n", "key 'assignment.colour' is not a known setting"),
    ("extra = 1\n" + ASSIGNMENT, "key 'extra' is not a known setting"),
    (ASSIGNMENT + "[budgets]\nmax_epoch = 3\n", "key 'budgets.max_epoch' is not a known setting"),
    (ASSIGNMENT + "[grading]\nsed = 3\n", "key 'grading.sed' is not a known setting"),
    (
        ASSIGNMENT + "[[targets]]\nname = 'A'\nmin_acc = 0.9\n",
        "key 'targets[0].min_acc' is not a known setting",
    ),
    (ASSIGNMENT + "[sandbox]\nx = 1\n", "key 'sandbox' is not a known setting"),
    # missing keys
    ("[budgets]\nmax_epochs = 3\n", "missing key 'assignment'"),
    (ASSIGNMENT.replace('title = "Toy problem"\n', ""), "key 'assignment.title' is missing"),
    (ASSIGNMENT.replace("num_classes = 3\n", ""), "key 'assignment.num_classes' is missing"),
    (ASSIGNMENT + "[[targets]]\nmin_test_accuracy = 0.9\n", "key 'targets[0].name' is missing"),
    # wrong types
    (
        ASSIGNMENT + "[budgets]\nmax_epochs = '10'\n",
        "key 'budgets.max_epochs' must be of type int, not str",
    ),
    (
        ASSIGNMENT + "[budgets]\nmax_epochs = 2.5\n",
        "key 'budgets.max_epochs' must be of type int, not float",
    ),
    (
        ASSIGNMENT + "[budgets]\nmax_epochs = true\n",
        "key 'budgets.max_epochs' must be an integer, not True",
    ),
    (ASSIGNMENT + "[grading]\nseed = false\n", "key 'grading.seed' must be an integer, not False"),
    (
        ASSIGNMENT + "[budgets]\ntimeout_seconds = true\n",
        "key 'budgets.timeout_seconds' must be of type float, not bool",
    ),
    (
        ASSIGNMENT + "[budgets]\ntimeout_seconds = '600'\n",
        "key 'budgets.timeout_seconds' must be of type float, not str",
    ),
    (
        ASSIGNMENT + "[grading]\nverify_determinism = 1\n",
        "key 'grading.verify_determinism' must be of type bool, not int",
    ),
    (
        ASSIGNMENT.replace('title = "Toy problem"', "title = 3"),
        "key 'assignment.title' must be of type str, not int",
    ),
    (
        ASSIGNMENT.replace("input_shape = [4]", "input_shape = []"),
        "key 'assignment.input_shape' must be a non-empty array",
    ),
    (
        ASSIGNMENT.replace("input_shape = [4]", "input_shape = 4"),
        "key 'assignment.input_shape' must be a non-empty array",
    ),
    (
        ASSIGNMENT.replace("input_shape = [4]", "input_shape = [1, 2.5]"),
        "key 'assignment.input_shape[1]' must be of type int, not float",
    ),
    (
        ASSIGNMENT + "[[targets]]\nname = 'A'\nmax_gap = 'small'\n",
        "key 'targets[0].max_gap' must be of type float, not str",
    ),
    ("assignment = 3\n", "key 'assignment' must be a table"),
    ("budgets = 3\n" + ASSIGNMENT, "key 'budgets' must be a table"),
    ("targets = 3\n" + ASSIGNMENT, "key 'targets' must be an array of tables ([[targets]])"),
    (
        ASSIGNMENT + "[targets]\nname = 'A'\n",
        "key 'targets' must be an array of tables ([[targets]])",
    ),
    ("targets = [1]\n" + ASSIGNMENT, "key 'targets[0]' must be a table"),
    # semantics
    (
        ASSIGNMENT.replace('dataset = "mnist"', 'dataset = "cifar10"'),
        "key 'assignment.dataset' must be one of mnist, uci_har",
    ),
    (
        ASSIGNMENT.replace("num_classes = 3", "num_classes = 1"),
        "key 'assignment.num_classes' must be at least 2",
    ),
    (
        ASSIGNMENT + "[[targets]]\nname = 'A'\nmin_test_accuracy = 96\n",
        "key 'targets[0].min_test_accuracy' must be a fraction in [0, 1]",
    ),
    (
        ASSIGNMENT + "[[targets]]\nname = 'A'\n[[targets]]\nname = 'B'\nmin_test_accuracy = -0.1\n",
        "key 'targets[1].min_test_accuracy' must be a fraction in [0, 1]",
    ),
    (
        ASSIGNMENT + "[[targets]]\nname = 'A'\n[[targets]]\nname = 'A'\n",
        "key 'targets' has two targets with the same name",
    ),
    # class names, points and the Gradescope section
    (
        ASSIGNMENT.replace("num_classes = 3", "num_classes = 3\nclass_names = ['a', 'b']"),
        "key 'assignment.class_names' must name all 3 classes, in order",
    ),
    (
        ASSIGNMENT.replace("num_classes = 3", "num_classes = 3\nclass_names = ['a', ' ', 'c']"),
        "key 'assignment.class_names' must not hold an empty name",
    ),
    (
        ASSIGNMENT.replace("num_classes = 3", "num_classes = 3\nclass_names = ['a', 2, 'c']"),
        "key 'assignment.class_names[1]' must be of type str, not int",
    ),
    (
        ASSIGNMENT + "[[targets]]\nname = 'A'\npoints = -1\n",
        "key 'targets[0].points' must be a finite number, 0 or more",
    ),
    (
        ASSIGNMENT + "[[targets]]\nname = 'A'\npoints = nan\n",
        "key 'targets[0].points' must be a finite number, 0 or more",
    ),
    (
        ASSIGNMENT + "[gradescope]\ncheck_points = inf\n",
        "key 'gradescope.check_points' must be a finite number, 0 or more",
    ),
    (
        ASSIGNMENT + "[gradescope]\nvisibility = 'public'\n",
        "key 'gradescope.visibility' must be one of hidden, after_due_date, after_published, "
        "visible",
    ),
    (ASSIGNMENT + "[gradescope]\npoints = 3\n", "key 'gradescope.points' is not a known setting"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_SPECS, ids=[p for _, p in BAD_SPECS])
def test_bad_spec_is_one_line_naming_file_and_key(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: {problem}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "key",
    [
        "max_epochs",
        "timeout_seconds",
        "cpu_seconds",
        "memory_mb",
        "max_weights_mb",
        "max_output_mb",
        "max_processes",
        "max_open_files",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1"])
def test_non_positive_budget(tmp_path: Path, key: str, value: str) -> None:
    path = write(tmp_path, ASSIGNMENT + f"[budgets]\n{key} = {value}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: key 'budgets.{key}' must be positive"


def test_cpu_seconds_is_optional_and_read_as_seconds(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, ASSIGNMENT)).budgets.cpu_seconds is None
    path = write(tmp_path, ASSIGNMENT + "[budgets]\ncpu_seconds = 900\n")
    assert load_spec(path).budgets.cpu_seconds == 900.0


def test_non_positive_thread_count(tmp_path: Path) -> None:
    path = write(tmp_path, ASSIGNMENT + "[grading]\nthreads = 0\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: key 'grading.threads' must be positive"


def test_int_accepted_where_float_expected(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            ASSIGNMENT + "[budgets]\ntimeout_seconds = 30\n"
            "[[targets]]\nname = 'A'\nmin_test_accuracy = 1\nmax_gap = 0\n",
        )
    )
    assert spec.budgets.timeout_seconds == 30.0
    assert type(spec.budgets.timeout_seconds) is float
    (target,) = spec.targets
    assert (type(target.min_test_accuracy), type(target.max_gap)) == (float, float)
    assert (target.min_test_accuracy, target.max_gap) == (1.0, 0.0)


def test_targets_keep_file_order_and_optional_gap(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            ASSIGNMENT + "[[targets]]\nname = 'Z'\nmin_test_accuracy = 0.5"
            "\nmax_gap = 0.1\n[[targets]]\nname = 'A'\ndescription = 'any'\n",
        )
    )
    assert spec.targets == (Target("Z", "", 0.5, 0.1), Target("A", "any", 0.0, None))


@pytest.mark.parametrize("shape", ["[0]", "[1, -28, 28]"])
def test_non_positive_input_shape_is_rejected(tmp_path: Path, shape: str) -> None:
    path = write(tmp_path, ASSIGNMENT.replace("input_shape = [4]", f"input_shape = {shape}"))
    with pytest.raises(SpecError, match=r"key 'assignment\.input_shape"):
        load_spec(path)


# --- load_specs -----------------------------------------------------------------------------


def test_load_specs_keys_by_name_and_ignores_other_files(tmp_path: Path) -> None:
    write(tmp_path, ASSIGNMENT)
    write(tmp_path, ASSIGNMENT.replace('name = "toy"', 'name = "other"'), "other.toml")
    (tmp_path / "README.md").write_text("not a spec")
    specs = load_specs(tmp_path)
    assert list(specs) == ["other", "toy"]
    assert specs["toy"].path == tmp_path / "toy.toml"


def test_load_specs_name_must_match_file(tmp_path: Path) -> None:
    path = write(tmp_path, ASSIGNMENT, "mnist.toml")
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    assert str(info.value) == (
        f"{path}: key 'assignment.name' is 'toy' but the file is named 'mnist'"
    )


def test_load_specs_reports_the_broken_file(tmp_path: Path) -> None:
    write(tmp_path, ASSIGNMENT)
    broken = write(
        tmp_path, ASSIGNMENT.replace('name = "toy"', 'name = "zzz"') + "oops = 1\n", "zzz.toml"
    )
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    assert str(info.value) == f"{broken}: key 'assignment.oops' is not a known setting"


def test_load_specs_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no specs here")
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    assert str(info.value) == f"{tmp_path}: no assignment specs (*.toml) found"


# --- Target.is_met --------------------------------------------------------------------------

TARGET_A = Target("A", min_test_accuracy=0.96, max_gap=0.02)
TARGET_B = Target("B", min_test_accuracy=0.975)


@pytest.mark.parametrize(
    ("target", "test_accuracy", "gap", "met"),
    [
        (TARGET_A, 0.96, 0.0, False),  # the accuracy bound is strict
        (TARGET_A, 0.9601, 0.0, True),
        (TARGET_A, 0.97, 0.02, False),  # so is the gap bound
        (TARGET_A, 0.97, 0.0199, True),
        (TARGET_A, 0.97, -0.05, True),  # test above train is fine
        (TARGET_A, 0.99, 0.03, False),
        (TARGET_A, 0.95, 0.0, False),
        (TARGET_B, 0.975, 0.0, False),
        (TARGET_B, 0.9751, 0.5, True),  # no gap bound at all
        (TARGET_B, 0.97, 0.0, False),
    ],
)
def test_is_met_bounds_are_strict(
    target: Target, test_accuracy: float, gap: float, met: bool
) -> None:
    assert target.is_met(test_accuracy, gap) is met


def test_is_met_at_a_count_based_accuracy_of_exactly_96_percent() -> None:
    # 9600 of MNIST's 10000 test images: exactly the bound, so not "> 96%".
    assert TARGET_A.is_met(9600 / 10000, 0.0) is False
    assert TARGET_A.is_met(9601 / 10000, 0.0) is True


@pytest.mark.parametrize(("train_correct", "test_correct"), [(58812, 9602), (59724, 9754)])
def test_gap_of_exactly_two_points_on_mnist_counts_is_not_met(
    train_correct: int, test_correct: int
) -> None:
    # grading.py computes gap = train_acc - test_acc from counts over 60000 / 10000 images;
    # these pairs differ by exactly 2 points.
    train, test = train_correct / 60000, test_correct / 10000
    assert TARGET_A.is_met(test, train - test) is False
