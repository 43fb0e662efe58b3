"""`grader similarity` on a class of 100 HAR submissions, against copydetect's own detector on
the same files (code alone), in one run.

The class: the lessons' experiments and the example submissions, each handed in by several
students with their own numbers (layer widths, HPARAMS), and a few planted copies; each student
has a graded row in a store whose three seeds' test predictions are drawn at the accuracies
the course's models reach. What is timed is the whole use case as `grader similarity` runs it:
specs, submissions, store, labels, every pair by code and by mistakes, both files written.

    python bench/similarity.py --data-dir DATA [--students 100] [--rounds 3]

Target: under a minute for 100 submissions on a 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import interleaved, ratio, spread

from grader.api import SimilarityOptions, grading_data, similarity
from grader.core.results import Result, Status
from grader.core.spec import load_spec
from grader.core.submission import discover
from grader.data.registry import default_cache_dir, default_data_dir
from grader.similarity.predictions import pack
from grader.store.sqlite import DB_NAME, Store

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = REPO / "course" / "assignments"
SEEDS = (0, 1, 2)
TARGET_SECONDS = 60.0


def main() -> int:
    args = _arguments()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _write_class(root / "submissions", args.students)
        labels, checksum = _labels(args)
        _write_store(root, labels, checksum)
        options = SimilarityOptions(
            submissions=root / "submissions",
            results=root,
            assignments=ASSIGNMENTS,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
        )
        found: list[bytes] = []  # each round's similarity.csv

        def ours() -> float:
            started = time.perf_counter()
            summary = similarity(options, lambda line: None)
            seconds = time.perf_counter() - started
            found.append(summary.files[0].read_bytes())
            return seconds

        def theirs() -> float:
            from copydetect import CopyDetector

            started = time.perf_counter()
            detector = CopyDetector(
                test_dirs=[str(root / "submissions")],
                boilerplate_dirs=[str(REPO / "starter")],
                extensions=["py"],
                silent=True,
                autoopen=False,
            )
            detector.run()
            return time.perf_counter() - started

        figures = interleaved({"grader similarity": ours, "copydetect": theirs}, args.rounds)
    rows = found[-1].decode().splitlines()[1:]
    signals = sum(not row.endswith(",none,False") for row in rows)
    said = f"{len(rows)} pairs, {signals} to review"
    print(f"{args.students} HAR submissions, {len(SEEDS)} seeds each: {said}")
    print(f"similarity.csv identical every round: {len(set(found)) == 1}")
    for name, values in figures.items():
        print(f"  {name:18} {spread(values)}")
    print(ratio(figures, "grader similarity", "copydetect"))
    worst = max(figures["grader similarity"])
    met = "met" if worst < TARGET_SECONDS else "NOT met"
    print(
        f"target: under {TARGET_SECONDS:.0f} s for {args.students} submissions: {met} "
        f"({worst:.1f} s)"
    )
    return 0


def _write_class(folder: Path, students: int) -> None:
    """Each student hands in one of the course's files with numbers of their own."""
    files = sorted((REPO / "course" / "lessons" / "experiments").glob("har_*.py"))
    files += sorted((REPO / "submissions").glob("*/har.py"))
    rng = random.Random(0)
    for i in range(students):
        text = files[i % len(files)].read_text()
        text = re.sub(r"\b(64|128|256)\b", lambda m: str(int(m.group()) * rng.choice((1, 2))), text)
        (folder / f"s{i:03d}").mkdir(parents=True)
        (folder / f"s{i:03d}" / "har.py").write_text(text)


def _labels(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    spec = load_spec(ASSIGNMENTS / "har.toml")
    data = grading_data(spec, args.data_dir, args.cache_dir).data
    return np.asarray(data.load("test_labels")), data.checksum


def _write_store(root: Path, labels: np.ndarray, checksum: str) -> None:
    """A graded row per student: each seed's predictions wrong on 3-10% of the examples."""
    spec = load_spec(ASSIGNMENTS / "har.toml")
    store = Store(root / DB_NAME)
    rng = np.random.default_rng(0)
    for sub in discover(root / "submissions", {"har": spec}, spec.budgets.weights_bytes):
        predicted = {}
        for seed in SEEDS:
            wrong = rng.random(len(labels)) < rng.uniform(0.03, 0.10)
            classes = np.where(wrong, (labels + rng.integers(1, 6, len(labels))) % 6, labels)
            predicted[str(seed)] = pack(classes)
        row = Result(
            student=sub.student,
            assignment="har",
            status=Status.OK,
            content_hash=sub.content_hash,
            data_checksum=checksum,
            seeds=list(SEEDS),
            test_predictions=predicted,
        )
        store.record(row)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
