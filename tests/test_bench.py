"""The benchmarks run, at small sizes, on the real data: they print their figures and ratios and
check their own invariants (same metrics every way). Their targets are met in full-size runs,
never asserted here: CI machines are too noisy for timings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO

pytestmark = pytest.mark.slow


def bench(script: str, *args: str, data: Path, cache: Path) -> str:
    done = subprocess.run(
        [sys.executable, script, "--data-dir", str(data), "--cache-dir", str(cache), *args],
        cwd=REPO / "bench",
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO / "bench")},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-cache")


def test_overhead(real_data_dir: Path, cache: Path) -> None:
    out = bench("overhead.py", "--rounds", "1", "--epochs", "1", data=real_data_dir, cache=cache)
    for line in ("  warm ", "  cold ", "  import torch ", "warm / import torch: median ",
                 "warm / cold: median ", "target: warm overhead below 25%"):  # fmt: skip
        assert line in out, out


def test_throughput(real_data_dir: Path, cache: Path) -> None:
    out = bench("throughput.py", "--n", "2", "--epochs", "1", "--ways", "warm-2,cold-2",
                "--no-warmup", data=real_data_dir, cache=cache)  # fmt: skip
    assert "submissions/min" in out and "throughput warm-2 vs cold-2" in out, out
    assert "metrics identical across ways: True; all rows ok: True" in out, out


def test_train_speed(real_data_dir: Path, cache: Path) -> None:
    out = bench("train_speed.py", "--limit", "2000", "--batch-sizes", "64", "--rounds", "1",
                data=real_data_dir, cache=cache)  # fmt: skip
    assert "batch 64, 2000 images, 1 epoch(s):" in out, out
    assert "tutorial / grader: median " in out and "accuracy: grader - tutorial = " in out, out


def test_similarity(real_data_dir: Path, cache: Path) -> None:
    out = bench("similarity.py", "--students", "12", "--rounds", "1", data=real_data_dir,
                cache=cache)  # fmt: skip
    assert "12 HAR submissions, 3 seeds each: 66 pairs" in out, out
    assert "similarity.csv identical every round: True" in out, out
    assert "grader similarity / copydetect: median " in out and "target: under 60 s" in out, out
