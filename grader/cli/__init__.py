"""The `grader` command: click only. Each command parses its options, makes one call to
grader.api and prints what it returns.

Only light modules are imported up front, so `grader --help` starts at once; each command
imports the heavy parts (torch, pandas, scikit-learn) it needs, when it runs.
"""

from __future__ import annotations

import sys

import click

from grader import __version__
from grader.cli.canvas import canvas_push_command
from grader.cli.course import (
    collect_command,
    data_command,
    gradebook_command,
    leaderboard_command,
    sandbox_command,
    similarity_command,
)
from grader.cli.grading import check_command, gradescope_group, run_command


@click.group()
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade PyTorch homework: sandboxed, deterministic, with a leaderboard."""


for _command in (
    run_command,
    check_command,
    leaderboard_command,
    gradescope_group,
    sandbox_command,
    data_command,
    collect_command,
    gradebook_command,
    canvas_push_command,
    similarity_command,
):
    main.add_command(_command)


def check_main(path: str, assignment: str) -> None:
    """`python my_har.py` runs `grader check` on itself as the named assignment, whatever the
    copy is called, passing on any extra arguments."""
    main(args=["check", path, "--assignment", assignment, *sys.argv[1:]], prog_name="grader")
