"""A submission that raises: the one-line message names the line, the log shows the student's
own frames with their source (never the grader's), and the report and `grader check` show it."""

from __future__ import annotations

from support.grading import GOOD_HAR, GradeSource

from grader.core.results import Status

TYPO = (
    GOOD_HAR.replace("torch.nn.ReLU()", "make_layer()")
    + """

def make_layer():
    return torch.nn.Relu()
"""
)


def test_an_error_shows_the_failing_line_and_the_students_frames(
    grade_source: GradeSource,
) -> None:
    result = grade_source(TYPO)
    assert result.status is Status.ERROR
    assert result.message == (
        "train: AttributeError: module 'torch.nn' has no attribute 'Relu' "
        "(line 13 of the submission)"
    )
    assert result.log_tail.strip().splitlines()[-6:] == [
        "Traceback (most recent call last), the lines of your file:",
        "  line 8, in build_model",
        "    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], 16), make_layer(),",
        "  line 13, in make_layer",
        "    return torch.nn.Relu()",
        "AttributeError: module 'torch.nn' has no attribute 'Relu'",
    ]
    assert "grader/child" not in result.log_tail and "job.py" not in result.log_tail


def test_an_error_inside_a_library_says_so_below_the_students_last_line(
    grade_source: GradeSource,
) -> None:
    result = grade_source(
        GOOD_HAR.replace("torch.nn.Linear(16, num_classes)", "torch.nn.Linear(16, 'six')")
    )
    assert result.status is Status.ERROR
    tail = result.log_tail.strip().splitlines()
    assert tail[-5:] == [
        "Traceback (most recent call last), the lines of your file:",
        "  line 9, in build_model",
        "    torch.nn.Linear(16, 'six'))",
        "  (raised inside the library code that line called)",
        "TypeError: empty(): argument 'size' (position 1) must be tuple of ints, but found "
        "element of type str at pos 0",
    ]
    assert "site-packages" not in result.log_tail and "grader/child" not in result.log_tail
