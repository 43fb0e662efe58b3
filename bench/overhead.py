"""Per-submission time outside student training, warm and cold, against a bare `import torch`
and against the training itself.

Grades the HAR starter (or --file) one submission on one seed at a time through the library, as
`grader run` does, alternating jobs forked from warm processes and fresh processes. Each row's
report (pictures, HTML, Markdown) is drawn as `grader run` draws it: by the run's ReportWriter,
on its lower-priority thread, beside the next submission's grading, and counted where it holds
that grading up (each way's previous row is handed to it as the way's next grading starts, and
the grading's figure ends once both are done). --inline-reports draws it after the grading
instead, its whole cost counted. Each figure is the wall time of grading and report minus the
training time the job measured. A bare `python -c "import torch"` is timed in the same rounds,
as the yardstick. No baselines run (they are graded once per spec and data, not per
submission).

    python bench/overhead.py --data-dir ../shared/data [--rounds 5] [--epochs N] [--file F]
        [--seed 0] [--no-reports | --inline-reports]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import interleaved, ratio, spread

from grader.api import grading_data
from grader.api.reporting import ReportWriter
from grader.core.results import Result
from grader.core.spec import PACKAGED, load_spec
from grader.core.submission import from_file
from grader.data.registry import default_cache_dir, default_data_dir
from grader.jobs.context import Settings, make_context
from grader.jobs.environment import environment
from grader.jobs.grade import grade
from grader.sandbox.box import Sandbox

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.25  # the warm path's overhead, as a share of a bare import of torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--file", type=Path, default=REPO / "starter" / "har.py")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="override HPARAMS epochs")
    parser.add_argument("--seed", type=int, default=0, help="the one seed graded")
    reports = parser.add_mutually_exclusive_group()
    reports.add_argument("--no-reports", action="store_true", help="time the grading alone")
    reports.add_argument(
        "--inline-reports", action="store_true", help="draw each report after its grading"
    )
    args = parser.parse_args()

    name = args.file.stem
    spec = load_spec(PACKAGED / f"{name}.toml")
    data = grading_data(spec, args.data_dir, args.cache_dir)
    ctx = make_context(spec, data, environment(), Settings(seeds=(args.seed,)))
    training: list[float] = []
    with tempfile.TemporaryDirectory() as folder, Sandbox(warm=True) as warm:
        source = _student_copy(args.file, Path(folder), args.epochs)
        submission = from_file(source, name, spec.budgets.weights_bytes)
        with Sandbox(warm=False) as cold:
            print(f"warm sandbox: {warm.launch}\ncold sandbox: {cold.launch}")

            held: dict[str, Result] = {}  # each way's last row, its report not drawn yet

            def outside_training(sandbox: Sandbox, way: str) -> float:
                writer = ReportWriter({name: spec}, Path(folder) / way, {}, print)
                started = time.perf_counter()
                if way in held and not args.no_reports:
                    writer.submit(held.pop(way))  # drawn beside this grading, as in a run
                result = grade(submission, ctx, sandbox)
                if not result.ok:
                    raise SystemExit(f"grading failed: {result.message}")
                if args.inline_reports:
                    writer.submit(result)
                else:
                    held[way] = result
                writer.finish()
                training.append(result.train_seconds or 0.0)
                return time.perf_counter() - started - training[-1]

            figures = interleaved(
                {
                    "warm": lambda: outside_training(warm, "warm"),
                    "cold": lambda: outside_training(cold, "cold"),
                    "import torch": _import_torch,
                },
                args.rounds,
            )
    reports = (
        "without reports"
        if args.no_reports
        else "reports drawn after each grading"
        if args.inline_reports
        else "reports drawn beside the next grading, as grader run draws them"
    )
    print(
        f"per submission, outside training ({args.file.name}, seed {args.seed}, no baselines, "
        f"{reports}, {args.rounds} rounds):"
    )
    for way, values in figures.items():
        print(f"  {way:13s} {spread(values)}")
    for a, b in (("warm", "import torch"), ("cold", "import torch"), ("warm", "cold")):
        print("  " + ratio(figures, a, b))
    share = statistics.median(
        w / t for w, t in zip(figures["warm"], figures["import torch"], strict=False)
    )
    trained = statistics.median(training)
    for way in ("warm", "cold"):
        share_of_training = statistics.median(figures[way]) / trained
        print(f"  {way} / the students' training ({trained:.3f} s): {share_of_training:.3f}")
    verdict = "met" if share < TARGET else "NOT met"
    print(f"target: warm overhead below {TARGET:.0%} of a bare import torch: {verdict}")
    return 0


def _student_copy(source: Path, folder: Path, epochs: int | None) -> Path:
    """The file as a student would submit it, in a folder of its own."""
    copy = folder / "student" / source.name
    copy.parent.mkdir()
    text = source.read_text()
    if epochs is not None:
        text += f"\nHPARAMS['epochs'] = {epochs}\n"
    copy.write_text(text)
    return copy


def _import_torch() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
