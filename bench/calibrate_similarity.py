"""Calibrate copy detection on the course's honest models and code, and find planted copies.

Honest code: every pair of distinct files among the lessons' experiments and the example
submissions, the spec's base files taken out. Honest models: those files' models as
bench/measure_course.py graded them (its --predictions file), paired two ways: one experiment
on two different seeds (one architecture: the pairs the threshold must clear), and models of
two different files on the same seed (a class: everyone is graded on the same seeds). A file an
experiment only edits (other epochs, another learning rate) is a copy with other HPARAMS, not
an honest pair: those variants are listed apart. Planted copies of the example with the most
code of its own (renamed, reordered, other HPARAMS: tests/support/copies.py) are graded here on
the spec's seeds. The course's solutions are left out: no student is given them.

The figures go to course/lessons/experiments/similarity.json, which
tests/test_similarity_calibration.py holds the specs' [similarity] thresholds to.

    python bench/measure_course.py --data-dir DATA --out /tmp/m.json --predictions P.npz
    python bench/calibrate_similarity.py --data-dir DATA --predictions P.npz [--graded G.npz]

--graded keeps what this script grades (more seeds, the copies) between runs.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from measure_course import ASSIGNMENTS, BY_ID, EXPERIMENTS, REPO, Experiment, edited, measure

from grader.api.common import grading_data
from grader.core.spec import Similarity, Spec, load_spec
from grader.data.registry import default_cache_dir, default_data_dir
from grader.sandbox.box import Sandbox, SandboxOptions
from grader.similarity import behaviour, code
from grader.similarity.pairs import explained, kappa, verdict

sys.path.insert(0, str(REPO / "tests"))  # the planted copies the real-data test grades too
from support.copies import MAKERS

OUT = REPO / "course" / "lessons" / "experiments" / "similarity.json"
EXAMPLES = REPO / "submissions"
COPIED = {"har": "frank", "mnist": "bob"}  # the examples with the most code of their own
# The MNIST spec grades one seed: these are graded here on two more, for pairs of one
# architecture on different seeds.
MORE_SEEDS = {"har": (), "mnist": ("mnist_batch", "mnist_batch_64", "mnist_starter")}
EXTRA = (1, 2)
TOP = 8  # pairs listed by name, the most alike first
NO_CODE = code.Match(0.0, (0.0, 0.0), 0, ([], []))  # judging models by their mistakes alone
Models = dict[str, dict[int, np.ndarray]]  # experiment id -> seed -> predicted test classes


def main() -> int:
    args = _arguments()
    predicted = dict(np.load(args.predictions))
    graded = _Graded(args)
    document: dict = {
        "about": "Copy detection's figures on honest pairs, variants and planted copies, "
        "measured by `python bench/calibrate_similarity.py`; "
        "tests/test_similarity_calibration.py holds the specs' [similarity] thresholds to them.",
        "assignments": {},
    }
    require = os.environ.get("GRADER_REQUIRE_SANDBOX", "") not in ("", "0")
    with SandboxOptions(require=require).sandbox() as sandbox:
        for name in ("har", "mnist"):
            spec = load_spec(ASSIGNMENTS / f"{name}.toml")
            labels = grading_data(spec, args.data_dir, args.cache_dir).data.load("test_labels")
            more = graded.more_seeds(spec, sandbox)
            models = _models({**predicted, **more}, name)
            copies = graded.copies(spec, sandbox)
            found = _assignment(spec, models, copies, labels)
            document["assignments"][name] = found
            print(json.dumps(found["summary"], indent=1), flush=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    return 0


def _assignment(spec: Spec, models: Models, copies: dict, labels: np.ndarray) -> dict:
    limits = spec.similarity
    base = code.base_kgrams([p.read_text() for p in limits.paths(spec.path)])
    files = _files(spec.name)
    sources = {file: code.source(text, base) for file, text in files.items()}
    honest_code = [
        _code_pair(a, b, code.compare(sources[a], sources[b]), limits)
        for a, b in itertools.combinations(sorted(sources), 2)
    ]
    starter = f"{spec.name}_starter"
    same_model = _model_pairs(models, labels, limits, _same_model, starter)
    other_files = _model_pairs(models, labels, limits, _other_files, starter)
    variants = _variants(spec.name, models, sources, base, labels, limits)
    planted = [_planted(spec, kind, copies, base, labels, models[starter]) for kind in MAKERS]
    honest = [*honest_code, *same_model, *other_files]
    return {
        "thresholds": {
            "min_code_similarity": limits.min_code_similarity,
            "min_overlap": limits.min_overlap,
            "min_error_consistency": limits.min_error_consistency,
        },
        "summary": {
            "honest_code": _spread(honest_code, "code_similarity"),
            "honest_code_overlap": _spread(honest_code, "overlap"),
            "same_model_other_seeds": _spread(same_model, "error_consistency"),
            "other_files_same_seed": _spread(other_files, "error_consistency"),
            "honest_pairs_with_a_verdict": sum(p["verdict"] != "none" for p in honest),
            "variants_with_a_verdict": f"{sum(p['verdict'] != 'none' for p in variants)} "
            f"of {len(variants)}",
            "planted": {p["kind"]: p["verdict"] for p in planted},
        },
        "honest_code": _top(honest_code, "code_similarity"),
        "same_model_other_seeds": _top(same_model, "error_consistency"),
        "other_files_same_seed": _top(other_files, "error_consistency"),
        "variants": variants,
        "planted": planted,
    }


def _files(assignment: str) -> dict[str, str]:
    """Each distinct file: the experiments' (as written, without the edits their pages name)
    and the examples', by path."""
    paths = {e.file for e in EXPERIMENTS if e.assignment == assignment}
    paths |= {str(p.relative_to(REPO)) for p in EXAMPLES.glob(f"*/{assignment}.py")}
    return {p: (REPO / p).read_text() for p in sorted(paths) if "solution" not in p}


def _models(predicted: dict[str, np.ndarray], assignment: str) -> Models:
    ids = {e.id for e in EXPERIMENTS if e.assignment == assignment and "solution" not in e.file}
    models: Models = {}
    for key, classes in predicted.items():
        name, seed = key.rsplit("/", 1)
        if name in ids:
            models.setdefault(name, {})[int(seed)] = classes
    return models


Pairing = Callable[[Models], list[tuple[tuple[str, int], tuple[str, int]]]]


def _same_model(models: Models) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    return [
        ((name, s), (name, t))
        for name, seeds in models.items()
        for s, t in itertools.combinations(sorted(seeds), 2)
    ]


def _other_files(models: Models) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    return [
        ((a, seed), (b, seed))
        for a, b in itertools.combinations(sorted(models), 2)
        if BY_ID[a].file != BY_ID[b].file
        for seed in sorted(set(models[a]) & set(models[b]))
    ]


def _model_pairs(
    models: Models, labels: np.ndarray, limits: Similarity, pairing: Pairing, starter: str
) -> list:
    """Each pair judged by its mistakes alone, as copy detection judges them: held against
    the starter's model on the same seed (pairs across seeds have no such reference)."""
    found = []
    for (a, s), (b, t) in pairing(models):
        seen = behaviour.compare({0: models[a][s]}, {0: models[b][t]}, labels)
        assert seen is not None
        reference = [] if s != t else [{0: models[starter][s]}]
        near_a = [kappa({0: models[a][s]}, r, labels) for r in reference]
        near_b = [kappa({0: models[b][t]}, r, labels) for r in reference]
        found.append(
            {
                "a": f"{a} seed {s}",
                "b": f"{b} seed {t}",
                "error_consistency": seen.error_consistency,
                "shared_wrong": seen.shared_wrong,
                "verdict": str(verdict(NO_CODE, seen, limits, explained(seen, near_a, near_b))),
            }
        )
    return found


def _variants(
    assignment: str,
    models: Models,
    sources: dict[str, code.Source],
    base: np.ndarray,
    labels: np.ndarray,
    limits: Similarity,
) -> list[dict]:
    """Each edited experiment against the experiment of its file without edits: code and
    mistakes on the seeds both have, judged together."""
    plain = {e.file: e.id for e in EXPERIMENTS if not e.edits and e.assignment == assignment}
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for e in EXPERIMENTS:
            if e.assignment != assignment or not e.edits or e.file not in plain:
                continue
            match = code.compare(
                sources[e.file], code.source(edited(e, Path(folder)).read_text(), base)
            )
            seen = behaviour.compare(models[plain[e.file]], models[e.id], labels)
            starter = [models[f"{assignment}_starter"]]
            near_a = [kappa(models[plain[e.file]], r, labels) for r in starter]
            near_b = [kappa(models[e.id], r, labels) for r in starter]
            near = explained(seen, near_a, near_b)
            found.append(_judged(plain[e.file], e.id, match, seen, limits, near))
    return found


def _planted(
    spec: Spec, kind: str, copies: dict, base: np.ndarray, labels: np.ndarray, starter: dict
) -> dict:
    (original, ours), (copied, theirs) = copies["original"], copies[kind]
    match = code.compare(code.source(original, base), code.source(copied, base))
    seen = behaviour.compare(ours, theirs, labels)
    near = explained(seen, [kappa(ours, starter, labels)], [kappa(theirs, starter, labels)])
    judged = _judged(COPIED[spec.name], f"{kind} copy", match, seen, spec.similarity, near)
    return {"kind": kind, **judged}


def _judged(
    a: str,
    b: str,
    match: code.Match,
    seen: behaviour.Behaviour | None,
    limits: Similarity,
    near: bool = False,
) -> dict:
    return {
        "a": a,
        "b": b,
        "code_similarity": match.similarity,
        "overlap": match.overlap,
        "error_consistency": seen.error_consistency if seen else None,
        "shared_wrong": seen.shared_wrong if seen else None,
        "verdict": str(verdict(match, seen, limits, near)),
    }


def _code_pair(a: str, b: str, match: code.Match, limits: Similarity) -> dict:
    return {
        "a": a,
        "b": b,
        "code_similarity": match.similarity,
        "overlap": match.overlap,
        "verdict": str(verdict(match, None, limits)),
    }


class _Graded:
    """What this script grades itself, kept in --graded between runs (keyed by the file's
    text, so a changed copy is graded again)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        path = args.graded
        self.kept = dict(np.load(path)) if path and path.exists() else {}

    def more_seeds(self, spec: Spec, sandbox: Sandbox) -> dict[str, np.ndarray]:
        more_spec = replace(spec, grading=replace(spec.grading, seeds=EXTRA))
        more = {}
        for name in MORE_SEEDS[spec.name]:
            more.update(self._grade(BY_ID[name], more_spec, sandbox, EXTRA))
        return more

    def copies(self, spec: Spec, sandbox: Sandbox) -> dict[str, tuple[str, dict[int, np.ndarray]]]:
        """The original example and each planted copy: (its text, its predictions by seed)."""
        who = COPIED[spec.name]
        original = (EXAMPLES / who / f"{spec.name}.py").read_text()
        graded = {}
        with tempfile.TemporaryDirectory() as folder:
            for kind, make in {"original": str, **MAKERS}.items():
                text = make(original)
                path = Path(folder) / kind / f"{spec.name}.py"
                path.parent.mkdir()
                path.write_text(text)
                digest = hashlib.sha256(text.encode()).hexdigest()[:12]
                experiment = Experiment(f"{who}_{kind}_{digest}", spec.name, str(path))
                classes = self._grade(experiment, spec, sandbox, spec.grading.all_seeds)
                graded[kind] = (text, {int(k.rsplit("/", 1)[1]): v for k, v in classes.items()})
        return graded

    def _grade(
        self, experiment: Experiment, spec: Spec, sandbox: Sandbox, seeds: tuple[int, ...]
    ) -> dict[str, np.ndarray]:
        keys = [f"{experiment.id}/{seed}" for seed in seeds]
        if not all(k in self.kept for k in keys):
            print(f"{experiment.id} on seeds {seeds} ...", flush=True)
            entry, classes = measure(experiment, spec, self.args, sandbox)
            assert entry["status"] == "ok", entry["message"]
            self.kept.update(classes)
            if self.args.graded:
                np.savez_compressed(self.args.graded, **self.kept)
        return {k: self.kept[k] for k in keys}


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
    parser.add_argument("--graded", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
