"""Grade every experiment the course's lessons and handouts quote, on every seed the
assignment's spec grades, and record the figures in course/lessons/experiments/measured.json.

An experiment is a file (a starter or a lesson's experiment) with the edits its page names
(`"epochs": 25` to 24, ...), graded as `grader check` grades it: the course's spec, its seeds,
one CPU thread, the sandbox. Each seed's figures are kept, and the row the grader shows (the
seeds' means, the test accuracy's spread, the targets the means meet). The pages quote these
figures; tests/test_course_figures.py holds them to this file.

    python bench/measure_course.py --data-dir DATA [--only ID ...] [--out FILE] [--list]
                                   [--predictions FILE.npz]

--only grades those experiments and keeps the file's other entries as they were.
--predictions also saves each seed's predicted test classes ("<id>/<seed>"), which
bench/calibrate_similarity.py calibrates copy detection on.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from grader.api.common import grading_data
from grader.core.results import Mode, Result
from grader.core.spec import Spec, load_spec
from grader.core.submission import from_file
from grader.data.registry import default_cache_dir, default_data_dir
from grader.jobs.context import Settings, make_context
from grader.jobs.environment import environment
from grader.jobs.grade import grade
from grader.jobs.seeds import combine
from grader.sandbox.box import Sandbox, SandboxOptions
from grader.similarity.predictions import unpack

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = REPO / "course" / "assignments"
MEASURED = REPO / "course" / "lessons" / "experiments" / "measured.json"
HAR = "starter/har.py"
EXP = "course/lessons/experiments/"
STEPLR = '"scheduler": "steplr", "scheduler_args": {"step_size": 10, "gamma": 0.3},'


@dataclass(frozen=True)
class Experiment:
    id: str
    assignment: str
    file: str  # relative to the repository
    edits: tuple[tuple[str, str], ...] = ()  # (text, replacement), each text found once
    mode: Mode = Mode.RETRAIN  # LOAD: evaluate the weights submitted beside the file


def _epochs(n: int, was: int = 25) -> tuple[tuple[str, str], ...]:
    return ((f'"epochs": {was},', f'"epochs": {n},'),)


# In the order they are graded: the ones the lessons' conclusions rest on first.
EXPERIMENTS = (
    Experiment("har_starter", "har", HAR),
    Experiment("har_starter_e5", "har", HAR, _epochs(5)),
    Experiment("har_starter_e100", "har", HAR, _epochs(100)),
    Experiment("har_early_stopping", "har", EXP + "har_early_stopping.py"),
    Experiment("har_starter_e24", "har", HAR, _epochs(24)),
    Experiment("har_starter_e26", "har", HAR, _epochs(26)),
    Experiment("har_steplr", "har", EXP + "har_steplr.py"),
    Experiment("har_steplr_e24", "har", EXP + "har_steplr.py", _epochs(24)),
    Experiment("har_steplr_e26", "har", EXP + "har_steplr.py", _epochs(26)),
    Experiment("har_mse", "har", EXP + "har_mse.py"),
    Experiment("har_nll_on_logits", "har", EXP + "har_nll_on_logits.py"),
    Experiment("har_sgd", "har", EXP + "har_sgd.py"),
    Experiment("har_sgd_lr0.1", "har", EXP + "har_sgd.py", (('"lr": 0.01,', '"lr": 0.1,'),)),
    Experiment("har_sgd_lr1", "har", EXP + "har_sgd.py", (('"lr": 0.01,', '"lr": 1.0,'),)),
    Experiment("har_momentum", "har", EXP + "har_momentum.py"),
    Experiment("har_radam", "har", EXP + "har_radam.py"),
    Experiment("har_radam_e24", "har", EXP + "har_radam.py", _epochs(24)),
    Experiment("har_radam_e26", "har", EXP + "har_radam.py", _epochs(26)),
    Experiment("har_radam_steplr", "har", EXP + "har_radam_steplr.py"),
    Experiment("har_dropout", "har", EXP + "har_dropout.py"),
    Experiment(
        "har_dropout_p0", "har", EXP + "har_dropout.py", (("Dropout(0.5)", "Dropout(0.0)"),)
    ),
    Experiment("har_no_batchnorm", "har", EXP + "har_no_batchnorm.py"),
    Experiment("har_no_batchnorm_e24", "har", EXP + "har_no_batchnorm.py", _epochs(24)),
    Experiment("har_no_batchnorm_e26", "har", EXP + "har_no_batchnorm.py", _epochs(26)),
    Experiment(
        "har_no_batchnorm_steplr",
        "har",
        EXP + "har_no_batchnorm.py",
        (('"loss": "cross_entropy",', '"loss": "cross_entropy", ' + STEPLR),),
    ),
    Experiment("mnist_batch", "mnist", EXP + "mnist_batch.py"),
    Experiment(
        "mnist_batch_64",
        "mnist",
        EXP + "mnist_batch.py",
        (('"batch_size": 256,', '"batch_size": 64,'),),
    ),
    Experiment("mnist_starter", "mnist", "starter/mnist.py"),
    Experiment("mnist_logits", "mnist", EXP + "mnist_logits.py"),
    Experiment("mnist_adadelta", "mnist", EXP + "mnist_adadelta.py"),
    # The instructor handout's calibration of the integrity audit: the course's honest rows.
    Experiment("har_solution", "har", "course/solutions/har.py"),
    Experiment("har_alice", "har", "submissions/alice/har.py"),
    Experiment("har_frank", "har", "submissions/frank/har.py"),
    Experiment("mnist_erin", "mnist", "submissions/erin/mnist.py", mode=Mode.LOAD),
    Experiment("mnist_carol", "mnist", "submissions/carol/mnist.py"),
    Experiment("mnist_bob", "mnist", "submissions/bob/mnist.py"),
    Experiment("mnist_solution", "mnist", "course/solutions/mnist.py"),
)
BY_ID = {e.id: e for e in EXPERIMENTS}


def edited(experiment: Experiment, folder: Path) -> Path:
    """The experiment's file with its edits, under its own name in folder (as it is, beside
    its submitted weights, when there are none)."""
    source = REPO / experiment.file
    if not experiment.edits:
        return source
    text = source.read_text()
    for old, new in experiment.edits:
        if text.count(old) != 1:
            raise SystemExit(f"{experiment.id}: {old!r} is not in {experiment.file} exactly once")
        text = text.replace(old, new)
    path = folder / source.name
    path.write_text(text)
    return path


def measure(
    experiment: Experiment, spec: Spec, args: argparse.Namespace, sandbox: Sandbox
) -> tuple[dict, dict[str, np.ndarray]]:
    data = grading_data(spec, args.data_dir, args.cache_dir)
    context = make_context(spec, data, environment("cpu"), Settings(mode=experiment.mode))
    with tempfile.TemporaryDirectory() as folder:
        submission = from_file(
            edited(experiment, Path(folder)), spec.name, spec.budgets.weights_bytes
        )
        per_seed = []
        for seeded in context.each_seed():
            started = time.monotonic()
            per_seed.append(grade(submission, seeded, sandbox))
            print(f"  seed {seeded.seed}: {time.monotonic() - started:.0f} s", flush=True)
    predicted = {
        f"{experiment.id}/{seed}": unpack(packed, context.data.test_size)
        for result in per_seed
        for seed, packed in result.test_predictions.items()
    }
    kept = {name: classes for name, classes in predicted.items() if classes is not None}
    return _entry(experiment, per_seed, combine(per_seed, spec)), kept


def _entry(experiment: Experiment, per_seed: list[Result], row: Result) -> dict:
    return {
        "assignment": experiment.assignment,
        "file": experiment.file,
        "edits": [list(edit) for edit in experiment.edits],
        "mode": experiment.mode.value,
        "seeds": list(row.seeds),
        "status": row.status.value,
        "message": row.message,
        "train_mean": row.train_accuracy,
        "test_mean": row.test_accuracy,
        "gap_mean": row.gap,
        "test_std": row.test_accuracy_std,
        "targets": dict(row.targets),
        "per_seed": [_seed(result) for result in per_seed],
    }


def _seed(result: Result) -> dict:
    return {
        "seed": result.seed,
        "status": result.status.value,
        "train": result.train_accuracy,
        "test": result.test_accuracy,
        "gap": result.gap,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "params": result.params,
        "train_seconds": result.train_seconds,  # the shared machine's load shows in these
        "agreement": result.agreement,
        "perturbed_drop": result.perturbed_drop,
        "weights_sha256": result.weights_sha256,
        "history": result.history,
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--only", nargs="+", choices=sorted(BY_ID), default=None)
    parser.add_argument("--out", type=Path, default=MEASURED)
    parser.add_argument("--list", action="store_true", help="print the experiments' ids")
    parser.add_argument("--predictions", type=Path, default=None, help="also save these (.npz)")
    return parser.parse_args()


def _write(out: Path, experiments: dict) -> None:
    document = {
        "about": "Figures the course quotes, graded on every seed of the course's spec by "
        "`python bench/measure_course.py`; tests/test_course_figures.py holds the pages to them.",
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "experiments": {e.id: experiments[e.id] for e in EXPERIMENTS if e.id in experiments},
    }
    out.write_text(_one_line_histories(document) + "\n")


def _one_line_histories(document: dict) -> str:
    """The document indented, but each seed's per-epoch record on one line: readable diffs
    without a line per number of every epoch."""
    document = copy.deepcopy(document)  # the histories are replaced in the copy only
    histories = {}
    for name, entry in document["experiments"].items():
        for record in entry["per_seed"]:
            token = f"history of {name} seed {record['seed']}"
            histories[token] = record["history"]
            record["history"] = token
    text = json.dumps(document, indent=1)
    for token, history in histories.items():
        text = text.replace(json.dumps(token), json.dumps(history), 1)
    return text


def main() -> int:
    args = _arguments()
    if args.list:
        print("\n".join(e.id for e in EXPERIMENTS))
        return 0
    chosen = [BY_ID[i] for i in args.only] if args.only else list(EXPERIMENTS)
    kept = json.loads(args.out.read_text())["experiments"] if args.out.exists() else {}
    saved = args.predictions
    predicted = dict(np.load(saved)) if saved and saved.exists() else {}
    # CI requires every sandbox layer (GRADER_REQUIRE_SANDBOX=1), as `grader check` does there.
    require = os.environ.get("GRADER_REQUIRE_SANDBOX", "") not in ("", "0")
    with SandboxOptions(require=require).sandbox() as sandbox:
        for experiment in chosen:
            print(f"{experiment.id} ...", flush=True)
            spec = load_spec(ASSIGNMENTS / f"{experiment.assignment}.toml")
            kept[experiment.id], classes = measure(experiment, spec, args, sandbox)
            _write(args.out, kept)  # after each, so an interrupted run keeps what it measured
            if args.predictions:
                predicted.update(classes)
                np.savez_compressed(args.predictions, **predicted)
            entry = kept[experiment.id]
            print(f"  {entry['status']}: test {entry['test_mean']} ± {entry['test_std']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
