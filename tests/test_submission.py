"""Discovering submissions on disk: names, sizes and bytes only, problems attached per row."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from grader.core.submission import (
    MAX_SOURCE_BYTES,
    StudentMeta,
    Submission,
    SubmissionsError,
    assignment_of,
    discover,
    from_file,
    mark_duplicates,
    read_meta,
)

ASSIGNMENTS = ("har", "mnist")
CAP = 1_000_000
CODE = "HPARAMS = {}\n\ndef build_model(input_shape, num_classes):\n    return None\n"


def put(root: Path, relative: str, data: bytes | str = CODE) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def only(root: Path, cap: int = CAP) -> Submission:
    (submission,) = discover(root, ASSIGNMENTS, cap)
    return submission


# --- the folder itself ----------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    root = tmp_path / "nope"
    with pytest.raises(SubmissionsError) as info:
        discover(root, ASSIGNMENTS, CAP)
    assert str(info.value) == f"submissions folder {root} does not exist"


def test_not_a_folder(tmp_path: Path) -> None:
    root = put(tmp_path, "subs.zip", b"PK")
    with pytest.raises(SubmissionsError) as info:
        discover(root, ASSIGNMENTS, CAP)
    assert str(info.value) == f"{root} is not a folder"


@pytest.mark.parametrize(
    "contents",
    [
        [],
        [
            "alice/notes.txt",
            "alice/helper.py",
            "alice/HAR.py",
            "alice/sub/har.py",
            "har.py",
            ".hidden/har.py",
            ".git/mnist.py",
        ],
    ],
)
def test_no_submissions(tmp_path: Path, contents: list[str]) -> None:
    root = tmp_path / "subs"
    root.mkdir()
    for relative in contents:
        put(root, relative)
    with pytest.raises(SubmissionsError) as info:
        discover(root, ASSIGNMENTS, CAP)
    assert str(info.value) == (
        f"no submissions in {root} (expected files like <student>/har.py, <student>/mnist.py)"
    )


# --- what is found --------------------------------------------------------------------------


def test_finds_known_assignments_sorted_and_ignores_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    for relative in [
        "zoe/mnist.py",
        "zoe/har.py",
        "adam/mnist.py",
        "adam/utils.py",
        "bob/lab3.py",
        ".trash/har.py",
        "stray.py",
        "mnist.py",
        "carl/x/har.py",
    ]:
        put(root, relative)
    found = discover(root, ASSIGNMENTS, CAP)
    assert [s.key for s in found] == [("har", "zoe"), ("mnist", "adam"), ("mnist", "zoe")]
    assert all(s.problem is None and s.weights is None for s in found)
    assert found[1].source == root / "adam" / "mnist.py"


def test_only_the_requested_assignments(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    put(root, "ann/mnist.py")
    assert [s.assignment for s in discover(root, {"mnist": object()}, CAP)] == ["mnist"]


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_beside_the_source_are_found(tmp_path: Path, suffix: str) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    weights = put(root, f"ann/har{suffix}", b"\0" * 16)
    put(root, "ann/mnist.pt", b"\0" * 16)  # another assignment's weights
    submission = only(root)
    assert (submission.weights, submission.problem) == (weights, None)


def test_from_file_takes_the_student_from_the_folder(tmp_path: Path) -> None:
    source = put(tmp_path, "ann/homework/mnist.py")
    submission = from_file(source, "mnist", CAP)
    assert (submission.student, submission.assignment, submission.source) == (
        "homework",
        "mnist",
        source,
    )
    assert submission.problem is None


# --- per-submission problems ----------------------------------------------------------------


SOURCE_PROBLEMS = [
    ("x = (\n", "har.py is not valid Python: '(' was never closed (line 1)"),
    (
        "if True:\nprint(1)\n",
        "har.py is not valid Python: expected an indented block after 'if' statement on line 1 "
        "(line 2)",
    ),
    (b"x = '\xff'\n", "har.py is not UTF-8 text (byte 5); save it as UTF-8"),
    (
        b"\xef\xbb\xbfx = 1\x00\n",
        "har.py contains NUL bytes; it looks like a binary file, not Python",
    ),
    (b"#" * (2 << 20), "har.py is 2 MB; source files are limited to 1 MB"),
]


@pytest.mark.parametrize(
    ("data", "problem"), SOURCE_PROBLEMS, ids=[p.split(";")[0] for _, p in SOURCE_PROBLEMS]
)
def test_source_problems(tmp_path: Path, data: bytes | str, problem: str) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py", data)
    submission = only(root)
    assert submission.problem == problem
    assert submission.student == "ann"


def test_source_of_exactly_the_size_limit_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py", b"#" * (MAX_SOURCE_BYTES - 1) + b"\n")
    assert only(root).problem is None


def test_oversize_source_message_does_not_contradict_itself(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py", b"#" * 1_500_000)
    problem = only(root).problem
    assert problem is not None
    assert problem.endswith("source files are limited to 1 MB")
    assert not problem.startswith("har.py is 1 MB;")


def test_source_that_is_a_symlink(tmp_path: Path) -> None:
    target = put(tmp_path, "elsewhere/solution.py")
    root = tmp_path / "subs"
    (root / "ann").mkdir(parents=True)
    (root / "ann" / "har.py").symlink_to(target)
    assert only(root).problem == "har.py is a symlink; submit a regular file"


def test_student_folder_symlinked_out_of_the_tree(tmp_path: Path) -> None:
    put(tmp_path, "outside/har.py")
    put(tmp_path, "outside/har.safetensors", b"\0" * 8)
    root = tmp_path / "subs"
    root.mkdir()
    (root / "mallory").symlink_to(tmp_path / "outside", target_is_directory=True)
    submission = only(root)
    assert submission.problem == "submission folder is a symlink out of the submissions tree"
    assert (submission.student, submission.weights, submission.content_hash) == (
        "mallory",
        None,
        "",
    )


@pytest.mark.parametrize(
    "student", ["bad name", "_alice", "-x", "a" * 65, "naïve", "a!", "alice\n"]
)
def test_invalid_student_id(tmp_path: Path, student: str) -> None:
    root = tmp_path / "subs"
    put(root, f"{student}/mnist.py")
    submission = only(root)
    assert submission.problem == f"folder name {student!r} is not a valid student id"
    assert submission.content_hash == ""


@pytest.mark.parametrize("student", ["a", "Alice", "s-123_x.y", "0" * 64])
def test_valid_student_id(tmp_path: Path, student: str) -> None:
    root = tmp_path / "subs"
    put(root, f"{student}/mnist.py")
    assert only(root).problem is None


def test_weights_over_the_cap(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    put(root, "ann/har.pt", b"\0" * (3 << 20))
    assert only(root, cap=1 << 20).problem == "har.pt is 3 MB; weights are limited to 1 MB"


def test_weights_at_the_cap_are_accepted(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    put(root, "ann/har.pt", b"\0" * 1000)
    assert only(root, cap=1000).problem is None


def test_weights_cap_message_uses_the_spec_number(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    weights = put(root, "ann/har.safetensors", b"")
    os.truncate(weights, (64 << 20) + 1)  # sparse: nothing is written
    problem = only(root, cap=64 << 20).problem
    assert problem is not None
    assert problem.endswith("weights are limited to 64 MB")


def test_both_weight_formats(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    put(root, "ann/har.safetensors", b"\0")
    put(root, "ann/har.pt", b"\0")
    assert only(root).problem == "both har.safetensors and har.pt present; submit one"


@pytest.mark.parametrize("kind", ["symlink", "folder"])
def test_weights_must_be_a_regular_file(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    weights = root / "ann" / "har.safetensors"
    if kind == "symlink":
        weights.symlink_to(put(tmp_path, "elsewhere.safetensors", b"\0"))
    else:
        weights.mkdir()
    submission = only(root)
    assert (submission.weights, submission.problem) == (
        weights,
        "har.safetensors must be a regular file",
    )


def test_folder_named_like_a_source(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    (root / "ann" / "har.py").mkdir(parents=True)
    put(root, "bob/har.py")
    found = discover(root, ASSIGNMENTS, CAP)
    assert [(s.student, s.problem is None) for s in found] == [("ann", False), ("bob", True)]


def test_fifo_named_like_a_source_does_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    (root / "ann").mkdir(parents=True)
    fifo = root / "ann" / "har.py"
    os.mkfifo(fifo)
    found: list[Submission] = []
    thread = threading.Thread(
        target=lambda: found.extend(discover(root, ASSIGNMENTS, CAP)), daemon=True
    )
    thread.start()
    thread.join(1.0)
    if thread.is_alive():
        with contextlib.suppress(OSError):  # the blocked reader sees end-of-file and returns
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5.0)
        pytest.fail("discover() blocked on a FIFO named har.py")
    assert found[0].problem is not None


# --- content_hash ---------------------------------------------------------------------------


def test_content_hash_is_stable_and_tracks_source_and_weights(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    source = put(root, "ann/har.py")
    first = only(root).content_hash
    assert len(first) == 64
    os.utime(source, (0, 0))  # timestamps do not matter
    assert only(root).content_hash == first

    source.write_text(CODE + "# tweak\n")
    edited = only(root).content_hash
    assert edited != first

    weights = put(root, "ann/har.safetensors", b"\1" * 32)
    with_weights = only(root).content_hash
    assert with_weights != edited
    weights.write_bytes(b"\2" * 32)
    assert only(root).content_hash not in (with_weights, edited)
    weights.write_bytes(b"\1" * 32)
    assert only(root).content_hash == with_weights


def test_content_hash_does_not_depend_on_the_student(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "ann/har.py")
    put(root, "bob/har.py")
    ann, bob = discover(root, ASSIGNMENTS, CAP)
    assert ann.content_hash == bob.content_hash


def test_content_hash_depends_on_the_weights_format(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    put(one, "ann/har.py")
    put(one, "ann/har.pt", b"\1" * 32)
    put(two, "ann/har.py")
    put(two, "ann/har.safetensors", b"\1" * 32)
    assert only(one).content_hash != only(two).content_hash


# --- duplicates -----------------------------------------------------------------------------


def test_mark_duplicates_flags_ids_differing_only_in_case(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    for relative in ["Alice/mnist.py", "alice/mnist.py", "bob/mnist.py", "ALICE/har.py"]:
        put(root, relative)
    marked = mark_duplicates(discover(root, ASSIGNMENTS, CAP))
    problems = {s.key: s.problem for s in marked}
    message = "duplicate student id: folders Alice, alice differ only in case"
    assert problems == {
        ("har", "ALICE"): None,
        ("mnist", "Alice"): message,
        ("mnist", "alice"): message,
        ("mnist", "bob"): None,
    }


def test_mark_duplicates_keeps_an_existing_problem(tmp_path: Path) -> None:
    root = tmp_path / "subs"
    put(root, "Alice/mnist.py", "x = (\n")
    put(root, "alice/mnist.py")
    first, second = mark_duplicates(discover(root, ASSIGNMENTS, CAP))
    assert first.problem == "mnist.py is not valid Python: '(' was never closed (line 1)"
    assert second.problem == "duplicate student id: folders Alice, alice differ only in case"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("har.py", "har"),
        ("my_har.py", "har"),
        ("HAR-v2.py", "har"),
        ("alice_mnist_final.py", "mnist"),
        ("harmony.py", "harmony"),  # a word, not a substring
        ("har_vs_mnist.py", "har_vs_mnist"),  # names both: the caller asks for --assignment
        ("homework.py", "homework"),
    ],
)
def test_a_lone_file_names_its_assignment(name: str, expected: str) -> None:
    assert assignment_of(Path(name), ASSIGNMENTS) == expected


# --- student.toml: metadata from the LMS, read as data ------------------------------------------


def test_student_toml_is_read_onto_every_submission_of_the_folder(tmp_path: Path) -> None:
    put(tmp_path, "alice/har.py")
    put(tmp_path, "alice/mnist.py")
    put(
        tmp_path,
        "alice/student.toml",
        'pseudonym = "Night Owl"\nlate = true\nsubmitted_at = "2026-09-14T23:59:00+00:00"\n'
        'source = "canvas"\n',
    )
    put(tmp_path, "bob/har.py")
    found = discover(tmp_path, ASSIGNMENTS, CAP)
    alice = StudentMeta("Night Owl", True, "2026-09-14T23:59:00+00:00", "canvas")
    assert [(s.student, s.meta) for s in found] == [
        ("alice", alice), ("bob", StudentMeta()), ("alice", alice)]  # fmt: skip
    assert alice.to_dict() == {
        "pseudonym": "Night Owl",
        "late": True,
        "submitted_at": "2026-09-14T23:59:00+00:00",
        "source": "canvas",
    }
    assert StudentMeta.from_dict(alice.to_dict()) == alice


def test_an_unquoted_toml_date_time_is_accepted(tmp_path: Path) -> None:
    path = put(tmp_path, "student.toml", "submitted_at = 2026-09-14T23:59:00+00:00\n")
    assert read_meta(path).submitted_at == "2026-09-14T23:59:00+00:00"


@pytest.mark.parametrize(
    ("text", "kept", "ignored"),
    [
        ('late = "yes"\n', {}, ["'late' must be true or false"]),
        ("pseudonym = 7\n", {}, ["'pseudonym' must be a non-empty string"]),
        ('pseudonym = "  "\n', {}, ["'pseudonym' must be a non-empty string"]),
        (f'pseudonym = "{"x" * 41}"\n', {}, ["'pseudonym' is longer than 40 characters"]),
        ('submitted_at = "last tuesday"\n', {}, ["'submitted_at' is not an ISO 8601 time"]),
        (
            'pseudonym = "ok"\ncolor = "red"\n[extra]\nx = 1\n',
            {"pseudonym": "ok"},
            ["unknown key 'color'", "unknown key 'extra'"],
        ),
        # control characters and line breaks become one inert line
        ('pseudonym = "a\\u001b[31mb\\nc"\n', {"pseudonym": "a?[31mb c"}, []),
    ],
)
def test_bad_values_are_ignored_and_said(
    tmp_path: Path, text: str, kept: dict[str, object], ignored: list[str]
) -> None:
    meta = read_meta(put(tmp_path, "student.toml", text))
    assert (meta.to_dict(), list(meta.ignored)) == (kept, ignored)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            b"pseudonym = \n",
            "student.toml is not valid TOML (Invalid value (at line 1, column 13))",
        ),
        (b"\xff\xfe", "student.toml is not valid TOML ('utf-8' codec can't decode byte 0xff in"),
        (b"#" * 5000, "student.toml is over 4.0 KB"),
    ],
)
def test_an_unreadable_file_is_ignored_and_said(tmp_path: Path, data: bytes, reason: str) -> None:
    meta = read_meta(put(tmp_path, "student.toml", data))
    assert meta.to_dict() == {}
    (said,) = meta.ignored
    assert said.startswith(reason)


def test_a_linked_or_folder_metadata_file_is_ignored(tmp_path: Path) -> None:
    secret = put(tmp_path, "secret.toml", 'pseudonym = "x"\n')
    (tmp_path / "student.toml").symlink_to(secret)
    assert read_meta(tmp_path / "student.toml").ignored == ("student.toml is not a regular file",)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "student.toml").mkdir()
    assert read_meta(tmp_path / "other" / "student.toml").to_dict() == {}


def test_a_broken_student_toml_never_stops_the_submission_from_grading(tmp_path: Path) -> None:
    put(tmp_path, "alice/har.py")
    put(tmp_path, "alice/student.toml", b"\x00\x01 not toml")
    submission = only(tmp_path)
    assert submission.problem is None
    assert submission.meta.ignored and submission.meta.to_dict() == {}
