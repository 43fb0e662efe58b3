"""Assignment specs: TOML files loaded into frozen dataclasses, and where to find them.

Every problem with a spec is reported as one line naming the file and the dotted key, so an
instructor can fix a typo without reading a traceback. The course's own specs ship inside the
package, so the grader works from any folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grader
from grader.core.errors import UserError
from grader.core.files import MB

DATASETS = ("mnist", "uci_har")
# scikit-learn reference models a spec may name (grader/jobs/baselines.py builds them).
BASELINES = ("logistic_regression", "linear_svm", "random_forest")
# Gradescope's visibility settings for results (its autograder specification).
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
BOUNDARY_DIGITS = 9
PACKAGED = Path(grader.__file__).resolve().parent / "assignments"
COURSE_FOLDER = Path("course") / "assignments"


class SpecError(UserError):
    """A spec file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Target:
    name: str
    description: str = ""
    min_test_accuracy: float = 0.0
    max_gap: float | None = None
    points: float = 0.0  # what meeting it is worth where points are given (Gradescope)

    def is_met(self, test_accuracy: float, gap: float) -> bool:
        """Both bounds are strict, as the course states them ("> 96%", "< 2 points").

        Accuracies are ratios of counts, so a gap of exactly 2 points arrives as 0.0199999...;
        rounding far below any count's resolution makes the boundary exact.
        """
        if not round(test_accuracy, BOUNDARY_DIGITS) > self.min_test_accuracy:
            return False
        return self.max_gap is None or round(gap, BOUNDARY_DIGITS) < self.max_gap


@dataclass(frozen=True)
class Budgets:
    max_epochs: int = 10
    timeout_seconds: float = 600.0  # wall clock per phase; with cpu_seconds, a backstop
    # CPU time per phase: what the student's code controls, the same on a busy machine.
    cpu_seconds: float | None = None
    memory_mb: int = 4096
    max_weights_mb: int = 64
    max_output_mb: int = 256
    max_processes: int = 256
    max_open_files: int = 256

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * MB

    @property
    def weights_bytes(self) -> int:
        return self.max_weights_mb * MB

    @property
    def output_bytes(self) -> int:
        return self.max_output_mb * MB


@dataclass(frozen=True)
class Grading:
    seed: int = 0
    # Several seeds: every one is graded, the board shows the mean and a target is met when
    # the mean meets it. Empty: the one seed above.
    seeds: tuple[int, ...] = ()
    # Graded once per spec and data into reference rows that every board shows, unranked.
    baselines: tuple[str, ...] = ()
    threads: int = 1
    verify_determinism: bool = False

    @property
    def all_seeds(self) -> tuple[int, ...]:
        return self.seeds or (self.seed,)


@dataclass(frozen=True)
class Audit:
    """The integrity audit's perturbation and the thresholds past which a row is flagged.

    Calibrated on the course's honest models (see the instructor handout); a row is flagged
    when any one signal fires."""

    changed_values: int = 3  # input values moved in each perturbed copy of a test input
    # How far each moves on float data; stored images move one grey level, their own grid.
    noise: float = 0.0
    min_agreement: float = 0.99  # predictions on originals and copies must agree this often
    max_perturbed_drop: float = 0.01  # test accuracy lost on the copies
    max_negative_gap: float = 0.02  # test accuracy above train accuracy
    max_holdout_drop: float = 0.03  # test accuracy above hold-out accuracy
    # --mode verify: submitted weights' test accuracy above the retrained (mean) one, allowed
    # on top of two standard deviations of the seeds' test accuracies.
    max_reproduction_gap: float = 0.01


@dataclass(frozen=True)
class Similarity:
    """Copy detection (`grader similarity`): the base files taken out of every submission's
    code, and the thresholds past which a pair is a signal for a person to review. The
    defaults are calibrated on the course's honest models (see the instructor guide)."""

    # The starter and any other files every student was given, relative to the spec's folder.
    base_files: tuple[str, ...] = ()
    # The larger share of either file's own code (the base files' taken out) found in the
    # other, and the characters of tokenised code the two share: both must be reached.
    min_code_similarity: float = 0.75
    min_overlap: int = 250
    # Error consistency (kappa on the two models' mistakes) past every honest pair's.
    min_error_consistency: float = 0.95

    def paths(self, spec_path: Path) -> list[Path]:
        return [spec_path.parent / Path(name).expanduser() for name in self.base_files]


@dataclass(frozen=True)
class Holdout:
    """Where a spec's private hold-out comes from (data/holdout.py); every source it names is
    used, together. With none, the row is graded without one, and the board says so."""

    # An instructor's private rows in the dataset's original format (MNIST's two t10k IDX
    # files, or UCI HAR's test/X_test.txt and test/y_test.txt): relative to the spec's own
    # folder, or absolute. Empty: none.
    folder: str = ""
    # QMNIST's 50,000 extra test digits, where the data folder has them. None: MNIST's default.
    qmnist: bool | None = None
    # This fraction of the training rows, seeded and stratified by class, kept out of what
    # students and baselines train on and scored as hold-out rows instead. 0: none.
    from_training: float = 0.0
    seed: int = 0  # which rows from_training keeps out

    def path(self, spec_path: Path) -> Path:
        return spec_path.parent / Path(self.folder).expanduser()

    def uses_qmnist(self, dataset: str) -> bool:
        return self.qmnist if self.qmnist is not None else dataset == "mnist"


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    dataset: str
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...] = ()  # for reports; default: the class indices

    def class_label(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)


@dataclass(frozen=True)
class Gradescope:
    """How `grader gradescope run` scores: points per passed contract check (each target's
    points are on the target), and who sees the results when."""

    check_points: float = 0.0
    visibility: str = "visible"


@dataclass(frozen=True)
class Spec:
    assignment: Assignment
    budgets: Budgets = field(default_factory=Budgets)
    grading: Grading = field(default_factory=Grading)
    gradescope: Gradescope = field(default_factory=Gradescope)
    audit: Audit = field(default_factory=Audit)
    holdout: Holdout = field(default_factory=Holdout)
    similarity: Similarity = field(default_factory=Similarity)
    targets: tuple[Target, ...] = ()
    path: Path = Path()
    digest: str = ""

    @property
    def name(self) -> str:
        return self.assignment.name


def load_spec(path: Path) -> Spec:
    """Read and validate one assignment spec."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec ({exc.strerror or exc})") from exc
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from exc
    where = _Where(path)
    sections = _check_keys(
        document, {f.name for f in dataclasses.fields(Spec)} - {"path", "digest"}, where, ""
    )
    if "assignment" not in sections:
        raise SpecError(f"{path}: missing key 'assignment'")
    assignment = _build(Assignment, sections["assignment"], where, "assignment")
    targets = sections.get("targets", [])
    if not isinstance(targets, list):
        raise SpecError(f"{path}: key 'targets' must be an array of tables ([[targets]])")
    spec = Spec(
        assignment=assignment,
        budgets=_build(Budgets, sections.get("budgets", {}), where, "budgets"),
        grading=_build(Grading, sections.get("grading", {}), where, "grading"),
        gradescope=_build(Gradescope, sections.get("gradescope", {}), where, "gradescope"),
        audit=_build(Audit, sections.get("audit", {}), where, "audit"),
        holdout=_build(Holdout, sections.get("holdout", {}), where, "holdout"),
        similarity=_build(Similarity, sections.get("similarity", {}), where, "similarity"),
        targets=tuple(_build(Target, t, where, f"targets[{i}]") for i, t in enumerate(targets)),
        path=path,
        digest=hashlib.sha256(raw).hexdigest(),
    )
    _check_semantics(spec, where)
    return spec


def load_specs(directory: Path) -> dict[str, Spec]:
    """All specs in a folder, keyed by assignment name (which must match the file name)."""
    specs = {}
    for path in sorted(directory.glob("*.toml")):
        spec = load_spec(path)
        if spec.name != path.stem:
            raise SpecError(
                f"{path}: key 'assignment.name' is {spec.name!r} but the file is "
                f"named {path.stem!r}"
            )
        specs[spec.name] = spec
    if not specs:
        raise SpecError(f"{directory}: no assignment specs (*.toml) found")
    return specs


@dataclass(frozen=True)
class SpecsFound:
    """A folder of specs and how it was chosen, for the terminal to say which specs it used."""

    folder: Path
    how: str

    def __str__(self) -> str:
        return f"{self.folder} ({self.how})"


@dataclass(frozen=True)
class SpecsAsked:
    """The specs folder the person named, if any, and how (--assignments or
    GRADER_ASSIGNMENTS); where none was named, locate_specs looks near the files at hand."""

    folder: Path | None = None
    how: str = "from --assignments"

    def locate(self, near: Path) -> SpecsFound:
        return locate_specs(self.folder, self.how, near)


def pick_spec(specs: dict[str, Spec], name: str | None, hint: str = "; use --assignment") -> Spec:
    """The spec of that name, or a SpecError naming the ones there are."""
    if name is None or name not in specs:
        raise SpecError(f"unknown assignment {name!r} (known: {', '.join(sorted(specs))}){hint}")
    return specs[name]


def locate_specs(explicit: Path | None, how: str, near: Path) -> SpecsFound:
    """The specs to grade with: the folder given (by --assignments or GRADER_ASSIGNMENTS, as
    `how` says), else course/assignments in the current folder, else one beside `near` (the
    submissions folder or a checked file) or above it, else the specs packaged with the grader.
    """
    if explicit is not None:
        return SpecsFound(explicit, how)
    if _has_specs(Path.cwd() / COURSE_FOLDER):
        return SpecsFound(COURSE_FOLDER, "in the current folder")
    start = near.resolve()
    for folder in [start, *start.parents]:
        if _has_specs(folder / COURSE_FOLDER):
            return SpecsFound(folder / COURSE_FOLDER, f"found from {near}")
    return SpecsFound(PACKAGED, f"packaged with course-grader {grader.__version__}")


def _has_specs(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.toml"))


@dataclass(frozen=True)
class _Where:
    path: Path

    def fail(self, key: str, problem: str) -> SpecError:
        return SpecError(f"{self.path}: key '{key}' {problem}")


def _check_keys(table: Any, allowed: set[str], where: _Where, prefix: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise where.fail(prefix.rstrip("."), "must be a table")
    for key in table:
        if key not in allowed:
            raise where.fail(prefix + key, "is not a known setting")
    return table


def _build(cls: Any, table: Any, where: _Where, section: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(table, set(fields), where, section + ".")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        key = f"{section}.{name}"
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise where.fail(key, "is missing")
            continue
        values[name] = _coerce(table[name], hints[name], where, key)
    return cls(**values)


def _coerce(value: Any, hint: Any, where: _Where, key: str) -> Any:
    """Check a TOML value against a field's type; TOML ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(value, options[0], where, key)
    if origin is tuple:
        if not isinstance(value, list) or not value:
            raise where.fail(key, "must be a non-empty array")
        item_type = typing.get_args(hint)[0]
        return tuple(_coerce(v, item_type, where, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise where.fail(key, f"must be an integer, not {value!r}")
    if not isinstance(value, hint):
        raise where.fail(key, f"must be of type {hint.__name__}, not {type(value).__name__}")
    return value


def _check_semantics(spec: Spec, where: _Where) -> None:
    a, b, g = spec.assignment, spec.budgets, spec.grading
    if a.dataset not in DATASETS:
        raise where.fail("assignment.dataset", f"must be one of {', '.join(DATASETS)}")
    if any(size <= 0 for size in a.input_shape):
        raise where.fail("assignment.input_shape", "must hold positive sizes")
    if a.num_classes < 2:
        raise where.fail("assignment.num_classes", "must be at least 2")
    if a.class_names and len(a.class_names) != a.num_classes:
        raise where.fail(
            "assignment.class_names", f"must name all {a.num_classes} classes, in order"
        )
    if any(not name.strip() for name in a.class_names):
        raise where.fail("assignment.class_names", "must not hold an empty name")
    if spec.gradescope.visibility not in VISIBILITIES:
        raise where.fail("gradescope.visibility", f"must be one of {', '.join(VISIBILITIES)}")
    positives = {
        "budgets.max_epochs": b.max_epochs,
        "budgets.timeout_seconds": b.timeout_seconds,
        "budgets.memory_mb": b.memory_mb,
        "budgets.max_weights_mb": b.max_weights_mb,
        "budgets.max_output_mb": b.max_output_mb,
        "budgets.max_processes": b.max_processes,
        "budgets.max_open_files": b.max_open_files,
        "grading.threads": g.threads,
    }
    if b.cpu_seconds is not None:
        positives["budgets.cpu_seconds"] = b.cpu_seconds
    for key, value in positives.items():
        if value <= 0:
            raise where.fail(key, "must be positive")
    if not _points(spec.gradescope.check_points):
        raise where.fail("gradescope.check_points", "must be a finite number, 0 or more")
    _check_audit(spec.audit, where)
    _check_similarity(spec.similarity, where)
    _check_holdout(spec.holdout, a.dataset, where)
    if len(set(g.seeds)) != len(g.seeds) or any(seed < 0 for seed in g.seeds):
        raise where.fail("grading.seeds", "must hold different seeds, 0 or more")
    for i, name in enumerate(g.baselines):
        if name not in BASELINES:
            raise where.fail(f"grading.baselines[{i}]", f"must be one of {', '.join(BASELINES)}")
    names = [t.name for t in spec.targets]
    if len(set(names)) != len(names):
        raise where.fail("targets", "has two targets with the same name")
    for i, t in enumerate(spec.targets):
        if not 0.0 <= t.min_test_accuracy <= 1.0:
            raise where.fail(f"targets[{i}].min_test_accuracy", "must be a fraction in [0, 1]")
        if not _points(t.points):
            raise where.fail(f"targets[{i}].points", "must be a finite number, 0 or more")


def _check_audit(audit: Audit, where: _Where) -> None:
    if audit.changed_values <= 0:
        raise where.fail("audit.changed_values", "must be positive")
    if not (math.isfinite(audit.noise) and audit.noise >= 0):
        raise where.fail("audit.noise", "must be a finite number, 0 or more")
    fractions = {
        "audit.min_agreement": audit.min_agreement,
        "audit.max_perturbed_drop": audit.max_perturbed_drop,
        "audit.max_negative_gap": audit.max_negative_gap,
        "audit.max_holdout_drop": audit.max_holdout_drop,
        "audit.max_reproduction_gap": audit.max_reproduction_gap,
    }
    for key, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise where.fail(key, "must be a fraction in [0, 1]")


def _check_similarity(similarity: Similarity, where: _Where) -> None:
    for key in ("min_code_similarity", "min_error_consistency"):
        value = getattr(similarity, key)
        if not (math.isfinite(value) and 0 < value <= 1):
            raise where.fail(f"similarity.{key}", "must be a fraction in (0, 1]")
    if similarity.min_overlap < 0:
        raise where.fail("similarity.min_overlap", "must be 0 or more")


def _check_holdout(holdout: Holdout, dataset: str, where: _Where) -> None:
    if holdout.qmnist and dataset != "mnist":
        raise where.fail("holdout.qmnist", "is for MNIST only (QMNIST holds extra MNIST digits)")
    if not 0.0 <= holdout.from_training <= 0.5:
        raise where.fail("holdout.from_training", "must be a fraction from 0 to 0.5")
    if holdout.seed < 0:
        raise where.fail("holdout.seed", "must be 0 or more")


def _points(value: float) -> bool:
    return math.isfinite(value) and value >= 0
