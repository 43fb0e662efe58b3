"""The grader as a library: every use case the command line offers is one call here.

The command line, the benchmarks and the tests all come through here: `run` a batch
(batch.py), `check` one file (single.py), and the board, exports, machine and data (tools.py).
"""

from grader.api.batch import (
    Interrupted,
    RunOptions,
    RunSummary,
    default_workers,
    run,
    run_batch,
)
from grader.api.common import Log, find_specs, grading_data, open_sandbox
from grader.api.grades import Gradebook, GradebookOptions, gradebook
from grader.api.similarity import SimilarityOptions, SimilaritySummary, similarity
from grader.api.single import (
    Checked,
    CheckOptions,
    GradescopeOptions,
    check,
    check_file,
    gradescope_build,
    gradescope_run,
)
from grader.api.tools import (
    LeaderboardOptions,
    collect_export,
    leaderboard,
    machine_report,
    prepare_data,
)
from grader.jobs.context import Settings
from grader.jobs.environment import environment
from grader.store.sqlite import RunRequest

__all__ = [
    "CheckOptions", "Checked", "Gradebook", "GradebookOptions", "GradescopeOptions",
    "Interrupted", "LeaderboardOptions", "Log", "RunOptions", "RunRequest",
    "RunSummary", "Settings", "SimilarityOptions", "SimilaritySummary", "check", "check_file",
    "collect_export", "default_workers", "environment", "find_specs", "gradebook",
    "gradescope_build", "gradescope_run", "grading_data", "leaderboard", "machine_report",
    "open_sandbox", "prepare_data", "run", "run_batch", "similarity",
]  # fmt: skip
