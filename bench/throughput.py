"""Throughput of `grader run` on N copies of the HAR starter: 1 worker vs 2, warm vs cold.

Each way is a whole `grader run` in a fresh results folder, as a TA would start it, reports
included (its default); the ways take turns each round, with a bare `python -c "import torch"`
as a yardstick. Each run is set against its students' own training (the board's train_seconds
summed, over the workers): the whole run, and the time outside that training per submission.
One seed and no baselines unless asked (baselines are graded once per spec and data, not per
run). Every way must give the same leaderboard metrics.

    python bench/throughput.py --data-dir ../shared/data [--n 8] [--rounds 1]
        [--ways warm-1,warm-2,cold-1,cold-2] [--epochs N] [--seeds 0] [--baselines]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pandas as pd
from timing import interleaved, ratio, spread

from grader.core.spec import PACKAGED
from grader.data.registry import default_cache_dir, default_data_dir

REPO = Path(__file__).resolve().parents[1]
FLAGS = {"warm": "--warm", "cold": "--no-warm"}
METRICS = ["student", "status", "test_accuracy", "train_accuracy", "gap", "weights_sha256"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--n", type=int, default=8, help="submissions per run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ways", default="warm-1,warm-2,cold-1,cold-2")
    parser.add_argument("--epochs", type=int, default=None, help="override HPARAMS epochs")
    parser.add_argument("--no-warmup", action="store_true", help="count every round")
    parser.add_argument("--seeds", default="0", help="grader run --seeds")
    parser.add_argument("--baselines", action="store_true", help="grade the specs' baselines")
    args = parser.parse_args()

    boards: dict[str, pd.DataFrame] = {}
    training: dict[str, float] = {}  # median seconds of training per submission, last round
    trained: dict[str, list[float]] = {}  # each run's training, over its workers
    with tempfile.TemporaryDirectory() as folder:
        submissions = _copies(Path(folder) / "submissions", args.n, args.epochs)
        specs = _specs(Path(folder) / "assignments", args.baselines)

        def way(name: str) -> float:
            launch, workers = name.split("-")
            out = Path(tempfile.mkdtemp(dir=folder))
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "grader.cli", "run", str(submissions), "--out", str(out),
                 "--workers", workers, "--assignments", str(specs), FLAGS[launch],
                 "--seeds", args.seeds,
                 "--data-dir", str(args.data_dir), "--cache-dir", str(args.cache_dir)],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "GRADER_REQUIRE_SANDBOX": ""},
            )  # fmt: skip
            seconds = time.perf_counter() - started
            board = pd.read_csv(out / "leaderboard.csv")
            students = board[board["kind"] == "student"]
            boards[name] = students[METRICS].reset_index(drop=True)
            training[name] = float(students["train_seconds"].median())
            trained.setdefault(name, []).append(students["train_seconds"].sum() / int(workers))
            return seconds

        names = args.ways.split(",")
        ways = {name: partial(way, name) for name in names}
        figures = interleaved({**ways, "import torch": _import_torch}, args.rounds,
                              warmup=not args.no_warmup)  # fmt: skip
    print(
        f"grader run on {args.n} copies of the HAR starter, seeds {args.seeds}, baselines "
        f"{'graded' if args.baselines else 'not run'}, reports on, {args.rounds} round(s):"
    )
    for name in names:
        per_minute = 60 * args.n / statistics.median(figures[name])
        print(f"  {name:7s} {spread(figures[name])}  {per_minute:6.1f} submissions/min")
    print(f"  import torch {spread(figures['import torch'])}")
    for slow, fast in (("warm-1", "warm-2"), ("cold-1", "cold-2"), ("cold-1", "warm-1"),
                       ("cold-2", "warm-2")):  # fmt: skip
        if slow in figures and fast in figures:
            print(f"  throughput {fast} vs {slow}, {ratio(figures, slow, fast)}")
    for name in names:
        hundred = statistics.median(figures[name]) / args.n * 100
        workers = int(name.split("-")[1])
        floor = training[name] * 100 / workers  # what the students' training alone takes
        print(
            f"  {name}: 100 submissions would take {hundred / 60:.1f} min; their training "
            f"alone ({training[name]:.2f} s each, {workers} at once) {floor / 60:.1f} min"
        )
    counted = len(figures["import torch"])
    for name in names:
        runs = list(zip(figures[name], trained[name][-counted:], figures["import torch"],
                        strict=True))  # fmt: skip
        whole = statistics.median(wall / train for wall, train, _ in runs)
        outside = statistics.median((wall - train) / args.n / torch for wall, train, torch in runs)
        print(
            f"  {name}: whole run / the students' own training {whole:.3f}; "
            f"outside training per submission / import torch {outside:.3f}"
        )
    reference = boards[names[0]]
    same = all(board.equals(reference) for board in boards.values())
    ok = (reference["status"] == "ok").all()
    print(f"metrics identical across ways: {same}; all rows ok: {ok}")
    return 0 if same and ok else 1


def _specs(folder: Path, baselines: bool) -> Path:
    """The course's specs, without their baselines unless asked."""
    folder.mkdir()
    for spec in PACKAGED.glob("*.toml"):
        text = spec.read_text()
        if not baselines:
            text = re.sub(r"(?m)^baselines = .*\n", "", text)
        (folder / spec.name).write_text(text)
    return folder


def _import_torch() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - started


def _copies(folder: Path, n: int, epochs: int | None) -> Path:
    source = (REPO / "starter" / "har.py").read_text()
    if epochs is not None:
        source += f"\nHPARAMS['epochs'] = {epochs}\n"
    for i in range(n):
        (folder / f"student{i:03d}").mkdir(parents=True)
        (folder / f"student{i:03d}" / "har.py").write_text(source)
    return folder


if __name__ == "__main__":
    sys.exit(main())
