"""Reports written beside the grading: on one thread of lower priority, the same files as
written in line, each row's once."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from support.course import SPECS
from support.results import detailed

from grader.api import reporting
from grader.api.reporting import ReportWriter
from grader.publish.reports import build_report, report_folder, write_report


def test_a_report_written_beside_the_grading_is_the_one_written_in_line(tmp_path: Path) -> None:
    specs = SPECS
    result = detailed()
    write_report(build_report(result, specs["har"]), tmp_path / "in-line")
    writer = ReportWriter(specs, tmp_path / "beside", {}, print)
    writer.submit(result)
    assert writer.finish() == 1
    folder = report_folder(tmp_path / "beside", result.student)
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(p.name for p in (tmp_path / "in-line").iterdir())
    for name in files:
        assert (folder / name).read_bytes() == (tmp_path / "in-line" / name).read_bytes(), name


def test_a_row_submitted_this_run_is_not_drawn_again_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawing = threading.Event()

    def slow_build(*args: object) -> object:  # still drawing when the run looks for missing ones
        drawing.wait(timeout=30)
        return build_report(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(reporting, "build_report", slow_build)
    writer = ReportWriter(SPECS, tmp_path, {}, print)
    writer.submit(detailed())
    writer.missing([detailed()])  # its file does not exist yet
    drawing.set()
    assert writer.finish() == 1
    again = ReportWriter(SPECS, tmp_path, {}, print)
    again.missing([detailed()])  # written by the run before
    assert again.finish() == 0


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own niceness is Linux's")
def test_reports_are_drawn_at_a_lower_priority_than_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    def build(*args: object) -> object:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        raise RuntimeError("not needed")

    monkeypatch.setattr(reporting, "build_report", build)
    said: list[str] = []
    writer = ReportWriter(SPECS, tmp_path, {}, said.append)
    writer.submit(detailed())
    assert writer.finish() == 0
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, mine + reporting.NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, 0) == mine  # the process itself is not reniced
    assert said == [f"warning: no report for {detailed().student}/har: RuntimeError: not needed"]
