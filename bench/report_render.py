"""What a student's report costs to render: every row of a results store, with its pictures and
without, from the store alone (nothing is graded).

Renders the two ways in turn (A B A B ...) so machine drift hits both alike, and prints each
row's median time per report (HTML + Markdown twin + PNG files), the median over rows, and the
ratio with pictures / without.

    python bench/report_render.py --out results [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from grader.core.results import Policy
from grader.core.spec import PACKAGED, load_specs
from grader.core.submission import StudentMeta
from grader.publish.reports import build_report, write_report
from grader.store.sqlite import DB_NAME, Store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results"), help="holds grades.sqlite")
    parser.add_argument("--assignments", type=Path, default=PACKAGED)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    store = Store(args.out / DB_NAME, create=False)
    specs = load_specs(args.assignments)
    meta = {s: StudentMeta.from_dict(m) for s, m in store.students().items()}
    results = store.standing(Policy.LATEST)
    build_report(results[0], specs.get(results[0].assignment))  # warm up matplotlib's imports
    times: dict[tuple[str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for result in results:
                for pictures in (True, False):
                    started = time.perf_counter()
                    spec = specs.get(result.assignment)
                    report = build_report(result, spec, meta.get(result.student), pictures=pictures)
                    write_report(report, Path(folder) / f"{result.student}-{pictures}")
                    elapsed = time.perf_counter() - started
                    times.setdefault(
                        (f"{result.student}/{result.assignment}", pictures), []
                    ).append(elapsed)
    print(f"{'row':<16} {'status':<8} {'with pictures':>14} {'text only':>10} {'ratio':>6}")
    with_pictures, text_only = [], []
    for result in results:
        name = f"{result.student}/{result.assignment}"
        a, b = statistics.median(times[(name, True)]), statistics.median(times[(name, False)])
        with_pictures.append(a)
        text_only.append(b)
        status = str(result.status)
        print(f"{name:<16} {status:<8} {a * 1000:>11.0f} ms {b * 1000:>7.0f} ms {a / b:>6.1f}")
    a, b = statistics.median(with_pictures), statistics.median(text_only)
    print(f"{'median':<25} {a * 1000:>11.0f} ms {b * 1000:>7.0f} ms {a / b:>6.1f}")
    print(f"{len(results)} reports, {args.rounds} rounds each way")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
