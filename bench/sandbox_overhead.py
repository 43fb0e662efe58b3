"""What the sandbox costs per submission: grade the same file with and without isolation.

Runs the two ways in turn (A B A B ...) in one process so machine drift hits both alike, and
prints each way's median wall time and the per-pair ratio sandboxed / unsandboxed.

    python bench/sandbox_overhead.py --data-dir ../shared/data [--rounds 5] [--file starter/har.py]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from grader.api import grading_data
from grader.core.spec import PACKAGED, load_spec
from grader.core.submission import from_file
from grader.data.registry import default_cache_dir, default_data_dir
from grader.jobs.context import Settings, make_context
from grader.jobs.environment import environment
from grader.jobs.grade import grade
from grader.sandbox.box import Sandbox

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--file", type=Path, default=REPO / "starter" / "har.py")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    name = args.file.stem
    spec = load_spec(PACKAGED / f"{name}.toml")
    data = grading_data(spec, args.data_dir, args.cache_dir)
    submission = from_file(args.file, name, spec.budgets.weights_bytes)
    ctx = make_context(spec, data, environment(), Settings())
    ways = {"sandboxed": Sandbox(warm=False), "unsandboxed": Sandbox(enabled=False, warm=False)}
    for way, sandbox in ways.items():
        layers = ", ".join(
            f"{layer.name} {'on' if layer.on else 'off'}" for layer in sandbox.layers
        )
        print(f"{way}: {layers}")

    times: dict[str, list[float]] = {way: [] for way in ways}
    for round_number in range(args.rounds + 1):  # round 0 warms caches and is not counted
        for way, sandbox in ways.items():
            started = time.perf_counter()
            result = grade(submission, ctx, sandbox)
            seconds = time.perf_counter() - started
            if not result.ok:
                print(f"{way}: grading failed: {result.message}", file=sys.stderr)
                return 1
            if round_number:
                times[way].append(seconds)

    for way, values in times.items():
        print(
            f"{way:12s} median {statistics.median(values):6.2f} s  "
            f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
        )
    ratios = [a / b for a, b in zip(times["sandboxed"], times["unsandboxed"], strict=True)]
    print(
        f"ratio sandboxed/unsandboxed: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )
    extra = statistics.median(
        a - b for a, b in zip(times["sandboxed"], times["unsandboxed"], strict=True)
    )
    print(f"added per submission (two sandboxed children): median {extra:+.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
