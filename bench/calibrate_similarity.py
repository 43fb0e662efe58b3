"""Calibrate copy detection on the course's honest models and code, and find planted copies.

Honest code: every pair of distinct files among the lessons' experiments (with the edits their
pages name) and the example submissions, the spec's base files taken out. Honest models: the
same experiments' models as bench/measure_course.py graded them (its --predictions file), paired
two ways: one experiment on two different seeds (one architecture, the pairs the threshold must
clear), and two experiments on the same seed (a class: everyone is graded on the same seeds).
Planted copies of the example submissions with the most code of their own (renamed, reordered,
other HPARAMS; tests/support/copies.py makes them) are graded here on the spec's seeds and
compared with their originals. The figures go to course/lessons/experiments/similarity.json;
tests/test_similarity_calibration.py holds the specs' thresholds to them.

    python bench/measure_course.py --data-dir DATA --out /tmp/m.json --predictions P.npz
    python bench/calibrate_similarity.py --data-dir DATA --predictions P.npz [--out FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from measure_course import ASSIGNMENTS, BY_ID, EXPERIMENTS, REPO, Experiment, edited, measure

from grader.api.common import grading_data
from grader.core.spec import Similarity, Spec, load_spec
from grader.data.registry import default_cache_dir, default_data_dir
from grader.sandbox.box import Sandbox, SandboxOptions
from grader.similarity import behaviour, code
from grader.similarity.pairs import verdict

sys.path.insert(0, str(REPO / "tests"))  # the planted copies the real-data test grades too
from support.copies import MAKERS

OUT = REPO / "course" / "lessons" / "experiments" / "similarity.json"
EXAMPLES = REPO / "submissions"
COPIED = {"har": "frank", "mnist": "bob"}  # the examples with the most code of their own
# The MNIST spec grades one seed: these experiments are graded here on two more, for the pairs
# of one architecture on different seeds.
MORE_SEEDS = {"har": (), "mnist": ("mnist_batch", "mnist_batch_64", "mnist_starter")}
EXTRA = (1, 2)
TOP = 5  # honest pairs listed by name, the most alike first
NO_CODE = code.Match(0.0, (0.0, 0.0), 0, ([], []))  # judging a pair of models by mistakes alone


def main() -> int:
    args = _arguments()
    predicted = dict(np.load(args.predictions))
    document: dict = {
        "about": "Copy detection's figures on honest pairs and planted copies, measured by "
        "`python bench/calibrate_similarity.py`; tests/test_similarity_calibration.py holds "
        "the specs' [similarity] thresholds to them.",
        "assignments": {},
    }
    require = os.environ.get("GRADER_REQUIRE_SANDBOX", "") not in ("", "0")
    with SandboxOptions(require=require).sandbox() as sandbox:
        for name in ("har", "mnist"):
            spec = load_spec(ASSIGNMENTS / f"{name}.toml")
            labels = grading_data(spec, args.data_dir, args.cache_dir).data.load("test_labels")
            models = _models({**predicted, **_more_seeds(spec, args, sandbox)}, name)
            copies = _copies(spec, args, sandbox)
            document["assignments"][name] = _assignment(spec, models, copies, labels)
            print(json.dumps(document["assignments"][name]["summary"], indent=1), flush=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    return 0


def _assignment(spec: Spec, models: dict, copies: dict, labels: np.ndarray) -> dict:
    base = code.base_kgrams([p.read_text() for p in spec.similarity.paths(spec.path)])
    sources = {i: code.source(text, base) for i, text in _honest_files(spec.name).items()}
    limits = spec.similarity
    honest_code = [
        _code_pair(a, b, code.compare(sources[a], sources[b]), limits)
        for a, b in itertools.combinations(sorted(sources), 2)
    ]
    same_model = _behaviour_pairs(models, labels, limits, same_experiment=True)
    same_seed = _behaviour_pairs(models, labels, limits, same_experiment=False)
    planted = [_planted(spec, kind, copies, base, labels) for kind in MAKERS]
    honest_verdicts = [
        p["verdict"] for p in [*same_model, *same_seed] if p["verdict"] != "none"
    ] + [p["verdict"] for p in honest_code if p["verdict"] != "none"]
    return {
        "thresholds": {
            "min_code_similarity": spec.similarity.min_code_similarity,
            "min_overlap": spec.similarity.min_overlap,
            "min_error_consistency": spec.similarity.min_error_consistency,
        },
        "summary": {
            "honest_code_pairs": _spread(honest_code, "code_similarity"),
            "same_model_other_seed": _spread(same_model, "error_consistency"),
            "other_model_same_seed": _spread(same_seed, "error_consistency"),
            "honest_pairs_with_a_verdict": len(honest_verdicts),
            "planted": {p["kind"]: p["verdict"] for p in planted},
        },
        "honest_code": _top(honest_code, "code_similarity"),
        "same_model_other_seed": _top(same_model, "error_consistency"),
        "other_model_same_seed": _top(same_seed, "error_consistency"),
        "planted": planted,
    }


def _more_seeds(spec: Spec, args: argparse.Namespace, sandbox: Sandbox) -> dict:
    grading = replace(spec.grading, seeds=EXTRA)
    more = {}
    for name in MORE_SEEDS[spec.name]:
        print(f"{name} on seeds {EXTRA} ...", flush=True)
        _, classes = measure(BY_ID[name], replace(spec, grading=grading), args, sandbox)
        more.update(classes)
    return more


def _honest_files(assignment: str) -> dict[str, str]:
    """The experiments' files with their edits and the examples, each distinct text once."""
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        for experiment in EXPERIMENTS:
            if experiment.assignment == assignment and "solution" not in experiment.file:
                text = edited(experiment, Path(folder)).read_text()
                if text not in texts.values():
                    texts[experiment.id] = text
    for path in sorted(EXAMPLES.glob(f"*/{assignment}.py")):
        text = path.read_text()
        if text not in texts.values():
            texts[f"example:{path.parent.name}"] = text
    return texts


def _models(predicted: dict[str, np.ndarray], assignment: str) -> dict[str, dict[int, np.ndarray]]:
    """experiment id -> seed -> predicted test classes, for this assignment's experiments."""
    ids = {e.id for e in EXPERIMENTS if e.assignment == assignment}
    models: dict[str, dict[int, np.ndarray]] = {}
    for key, classes in predicted.items():
        name, seed = key.rsplit("/", 1)
        if name in ids:
            models.setdefault(name, {})[int(seed)] = classes
    return models


def _behaviour_pairs(
    models: dict, labels: np.ndarray, limits: Similarity, *, same_experiment: bool
) -> list[dict]:
    """One experiment on each two of its seeds, or each two experiments on a seed they share."""
    if same_experiment:
        both = [
            ((name, s), (name, t))
            for name, seeds in models.items()
            for s, t in itertools.combinations(sorted(seeds), 2)
        ]
    else:
        both = [
            ((a, seed), (b, seed))
            for a, b in itertools.combinations(sorted(models), 2)
            for seed in sorted(set(models[a]) & set(models[b]))
        ]
    found = []
    for (a, s), (b, t) in both:
        seen = behaviour.compare({0: models[a][s]}, {0: models[b][t]}, labels)
        assert seen is not None
        found.append(
            {
                "a": f"{a} seed {s}",
                "b": f"{b} seed {t}",
                "error_consistency": seen.error_consistency,
                "shared_wrong": seen.shared_wrong,
                "verdict": str(verdict(NO_CODE, seen, limits)),
            }
        )
    return found


def _code_pair(a: str, b: str, match: code.Match, limits: Similarity) -> dict:
    return {
        "a": a,
        "b": b,
        "code_similarity": match.similarity,
        "overlap": match.overlap,
        "verdict": str(verdict(match, None, limits)),
    }


def _copies(spec: Spec, args: argparse.Namespace, sandbox: Sandbox) -> dict:
    """The original example and each planted copy, graded on the spec's seeds."""
    who = COPIED[spec.name]
    original = (EXAMPLES / who / f"{spec.name}.py").read_text()
    graded = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind, make in {"original": lambda t: t, **MAKERS}.items():
            path = Path(folder) / kind / f"{spec.name}.py"
            path.parent.mkdir()
            path.write_text(make(original))
            print(f"{spec.name}: {who} {kind} ...", flush=True)
            experiment = Experiment(f"{who}_{kind}", spec.name, str(path))
            entry, classes = measure(experiment, spec, args, sandbox)
            assert entry["status"] == "ok", entry["message"]
            seeds = {int(k.rsplit("/", 1)[1]): v for k, v in classes.items()}
            graded[kind] = (path.read_text(), seeds)
    return graded


def _planted(spec: Spec, kind: str, copies: dict, base: np.ndarray, labels: np.ndarray) -> dict:
    (original, ours), (copied, theirs) = copies["original"], copies[kind]
    match = code.compare(code.source(original, base), code.source(copied, base))
    seen = behaviour.compare(ours, theirs, labels)
    return {
        "kind": kind,
        "of": COPIED[spec.name],
        "code_similarity": match.similarity,
        "overlap": match.overlap,
        "error_consistency": seen.error_consistency if seen else None,
        "shared_wrong": seen.shared_wrong if seen else None,
        "verdict": str(verdict(match, seen, spec.similarity)),
    }


def _spread(pairs: list[dict], figure: str) -> dict:
    values = sorted(p[figure] for p in pairs if p[figure] is not None)
    if not values:
        return {"pairs": 0}
    return {
        "pairs": len(values),
        "median": statistics.median(values),
        "p95": values[min(len(values) - 1, int(0.95 * len(values)))],
        "max": values[-1],
    }


def _top(pairs: list[dict], figure: str) -> list[dict]:
    known = [p for p in pairs if p[figure] is not None]
    return sorted(known, key=lambda p: -p[figure])[:TOP]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
