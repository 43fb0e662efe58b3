"""The terminal table: fits the width it is given, reads as the progress lines do
(percentages, the gap in points), marks targets, wraps messages at words, shows lateness, and
keeps a log's lines whole."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios

import pandas as pd
import pytest
from support.results import graded

from grader.core.results import Result, Status
from grader.core.submission import StudentMeta
from grader.publish.ranking import ranked
from grader.publish.table import Marks, table_text, terminal_width

CRASH = (
    "seed 0: train: AttributeError: 'Sequential' object has no attribute 'conv1' "
    "(line 44 of the submission)"
)


def board() -> pd.DataFrame:
    rows = [
        graded("ann", 0.9772, seeds=[0, 1, 2], test_accuracy_std=0.0027),
        graded("bob", 0.9684, seeds=[0, 1, 2], test_accuracy_std=0.0031),
        Result(
            student="cyd", assignment="har", status=Status.ERROR, message=CRASH, seeds=[0, 1, 2]
        ),
    ]
    meta = {"bob": StudentMeta(late=True), "ann": StudentMeta(late=False)}
    return ranked(rows, ["A", "B"], meta)


def test_at_80_columns_every_line_fits_and_the_message_wraps_at_words() -> None:
    text = table_text(board(), 80, Marks.for_encoding("utf-8"))
    assert text.splitlines() == [
        "#  student  status          test    gap  targets  late  message",
        "1  ann      ok      97.72% ±0.27  +1.00  A ✓ B ✓  no",
        "2  bob      ok      96.84% ±0.31  +1.00  A ✓ B ✗  late",
        "-  cyd      error              -      -  -        -     seed 0: train:",
        "                                                        AttributeError:",
        "                                                        'Sequential' object has",
        "                                                        no attribute 'conv1'",
        "                                                        (line 44 of the",
        "                                                        submission)",
        "test: test accuracy, mean over seeds 0, 1, 2 (± sd); gap: train minus test",
        "accuracy, in points; targets: ✓ met, ✗ not met; -: none",
    ]


def test_at_160_columns_a_row_is_one_line() -> None:
    lines = table_text(board(), 160).splitlines()
    assert lines[3].endswith(f"-     {CRASH}")
    assert max(map(len, lines)) <= 160


def test_a_narrow_terminal_puts_the_message_under_its_row() -> None:
    row = Result(student="s" * 40, assignment="har", status=Status.ERROR, message=CRASH)
    lines = table_text(ranked([row]), 72).splitlines()
    assert lines[0] == "#  " + "student".ljust(40) + "  status  test  gap  targets"
    assert lines[2:4] == [
        "    seed 0: train: AttributeError: 'Sequential' object has no attribute",
        "    'conv1' (line 44 of the submission)",
    ]
    assert all(len(line) <= 72 for line in lines)


def test_a_log_keeps_each_row_on_one_line_and_nothing_reads_as_python() -> None:
    text = table_text(board())
    assert text.splitlines()[3].endswith(CRASH)
    for word in ("<NA>", "None", "True", "False", "nan", "0.97"):
        assert word not in text


def test_a_stream_that_cannot_print_a_tick_gets_words() -> None:
    text = table_text(board(), 160, Marks.for_encoding("ascii"))
    assert "A yes B no" in text and "97.72% +/-0.27" in text
    text.encode("ascii")
    assert Marks.for_encoding(None).met == "yes"  # a stream that names no encoding


def test_lateness_shows_only_where_the_board_knows_it() -> None:
    header = table_text(ranked([graded("ann", 0.97)]), 160).splitlines()[0]
    assert header == "#  student  status    test    gap  targets  message"


def test_several_assignments_name_theirs() -> None:
    rows = [graded("ann", 0.97), graded("ann", 0.99, assignment="mnist")]
    lines = table_text(ranked(rows), 160).splitlines()
    assert lines[0].startswith("#  student  assignment  status")
    assert lines[1].startswith("1  ann      har ")


def test_the_width_is_columns_else_the_terminals_else_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert terminal_width(io.StringIO()) is None  # a log file: lines are not cut
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            for columns, width in ((123, 123), (0, None)):  # 0: a terminal that says nothing
                size = struct.pack("HHHH", 40, columns, 0, 0)
                fcntl.ioctl(follower, termios.TIOCSWINSZ, size)
                assert terminal_width(terminal) == width
            monkeypatch.setenv("COLUMNS", "90")
            assert terminal_width(terminal) == 90
    finally:
        os.close(leader)
        os.close(follower)


def test_a_baseline_reads_as_a_reference_and_one_seed_is_named() -> None:
    rows = [graded("ann", 0.97, seeds=[0]), graded("sklearn:svm", 0.95, seeds=[0], kind="baseline")]
    lines = table_text(ranked(rows), 160).splitlines()
    assert [line.split()[:2] for line in lines[1:3]] == [["1", "ann"], ["ref", "sklearn:svm"]]
    assert lines[-1] == (
        "test: test accuracy on seed 0; gap: train minus test accuracy, in points; targets: "
        "✓ met, ✗ not met; -: none; ref: a reference row (a baseline), not ranked"
    )


def test_the_legend_names_the_seeds_of_the_rows_with_figures() -> None:
    rows = [
        graded("ann", 0.97, seeds=[0, 1, 2], test_accuracy_std=0.001),
        Result(student="bob", assignment="har", status=Status.ERROR, message="x", seeds=[0]),
    ]
    legend = table_text(ranked(rows), 200).splitlines()[-1]
    assert legend.startswith("test: test accuracy, mean over seeds 0, 1, 2 (± sd); ")


def test_the_instructors_table_names_similar_students_beside_the_message() -> None:
    rows = [graded("ann", 0.9772, content_hash="a"), graded("bob", 0.9772, content_hash="b")]
    similar = {("har", "ann", "a"): "bob (identical)", ("har", "bob", "b"): "ann (identical)"}
    lines = table_text(ranked(rows, ["A", "B"], similar=similar), 80).splitlines()
    assert lines[1].endswith("similar to bob (identical)")
    assert lines[2].endswith("similar to ann (identical)")
    assert "similar" not in table_text(ranked(rows, ["A", "B"]), 80)
