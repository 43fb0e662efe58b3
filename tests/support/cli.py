"""The `grader` command, invoked in-process as a user would type it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from grader.cli import main


def invoke(*args: str | Path) -> Result:
    """Run `grader ARGS`; stdout and stderr kept apart."""
    try:  # click 8.1 mixes stderr into stdout unless told not to; 8.2 always keeps both
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, [str(a) for a in args])
