"""The examples graded by the local executor vs through a Slurm cluster (`--executor slurm`).

Each way is a whole `grader run submissions/` in a fresh results folder; the ways take turns each
round. The Slurm way needs a cluster the Slurm commands reach, e.g. the one-node cluster of
`scripts/slurm-local up` (then `eval "$(scripts/slurm-local env)"`). Both ways must give the
same leaderboard metrics. On one node the cluster has the same cores as the local executor, so
this measures what Slurm adds (staging, sbatch, polling), not a speed-up.

    python bench/slurm.py --data-dir ../shared/data [--rounds 1] [--no-warmup]
        [--submissions submissions] [--assignments FOLDER]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pandas as pd
from timing import interleaved, ratio, spread

from grader.core.spec import PACKAGED, load_specs
from grader.data.registry import default_cache_dir, default_data_dir, prepare

REPO = Path(__file__).resolve().parents[1]
METRICS = ["assignment", "student", "status", "test_accuracy", "train_accuracy", "gap", "seeds"]
EXECUTORS = ("local", "slurm")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--submissions", type=Path, default=REPO / "submissions")
    parser.add_argument("--assignments", type=Path, default=PACKAGED)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-warmup", action="store_true", help="count every round")
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        print("no Slurm here: start one with scripts/slurm-local up", file=sys.stderr)
        return 2

    boards: dict[str, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory() as folder:
        shared = Path(folder) / "shared"
        datasets = {spec.assignment.dataset for spec in load_specs(args.assignments).values()}
        for dataset in sorted(datasets):  # both ways start with their data prepared
            prepare(dataset, args.data_dir, args.cache_dir)
            prepare(dataset, args.data_dir, shared / "data")

        def way(name: str) -> float:
            out = Path(tempfile.mkdtemp(dir=folder))
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "grader.cli", "run", str(args.submissions),
                 "--out", str(out), "--assignments", str(args.assignments), "--quiet",
                 "--data-dir", str(args.data_dir), "--cache-dir", str(args.cache_dir),
                 *_executor(name, shared)],
                check=True, stdout=subprocess.DEVNULL,
                env={**os.environ, "GRADER_REQUIRE_SANDBOX": ""},
            )  # fmt: skip
            seconds = time.perf_counter() - started
            board = pd.read_csv(out / "leaderboard.csv")
            boards[name] = board[METRICS].sort_values(["assignment", "student"], ignore_index=True)
            return seconds

        ways = {name: partial(way, name) for name in EXECUTORS}
        figures = interleaved(ways, args.rounds, warmup=not args.no_warmup)
    rows = len(boards["local"])
    print(f"grader run {args.submissions.name}/ ({rows} rows), {args.rounds} round(s):")
    for name, values in figures.items():
        print(f"  {name:6s} {spread(values)}")
    print(f"  time {ratio(figures, 'slurm', 'local')}")
    same = boards["slurm"].equals(boards["local"])
    print(f"metrics identical across ways: {same}")
    return 0 if same else 1


def _executor(name: str, shared: Path) -> list[str]:
    if name == "local":
        return ["--executor", "local"]
    return ["--executor", "slurm", "--shared-dir", str(shared)]


if __name__ == "__main__":
    sys.exit(main())
