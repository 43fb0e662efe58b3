"""`grader collect` on small generated exports in Canvas's, Moodle's and a plain folder's layout:
what lands where, what is reported, lateness, no silent overwrites, and a safe read of the zip."""

from __future__ import annotations

import os
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from grader.adapters.archive import ExportError, Member, TooBig
from grader.adapters.collect import Format, Options, Report, collect, detect_format, student_id
from grader.cli import main
from grader.core.submission import StudentMeta, discover

KNOWN = ["har", "mnist"]
SOURCE = b"HPARAMS = {'epochs': 1, 'batch_size': 8, 'lr': 0.01}\n"
WEIGHTS = b"\x00weights\x01"


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def run(export: Path, to: Path, **options: Any) -> Report:
    return collect(export, to, Options(tuple(KNOWN), **options))


def reasons(report: Report) -> dict[str, str]:
    return {p.path: p.reason for p in report.problems}


def placed(report: Report) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {f"{p.student}/{p.assignment}": (p.action, p.files) for p in report.placed}


def student_file(to: Path, student: str) -> dict[str, object]:
    return tomllib.loads((to / student / "student.toml").read_text())


# --- Canvas -----------------------------------------------------------------------------------

CANVAS = {
    "doejane_12345_678_har.py": SOURCE,
    "doejane_12345_679_har.safetensors": WEIGHTS,
    "smithjohn_LATE_222_680_my_har-1.py": SOURCE + b"# resubmitted\n",
    "núñezjosé_333_682_har.py": SOURCE + b"# 3\n",
    "núñezjosé_333_681_notes.pdf": b"%PDF",
    "张伟_555_684_har.py": SOURCE,
    "anon_x7Kq2_685_har.py": SOURCE + b"# anonymous\n",
    "LATE_anon_b9Zt1_686_har.py": SOURCE + b"# anonymous, late\n",
    "doejane_12345_text.html": b"<p>see attached</p>",
}


def test_a_canvas_export_is_placed_by_student_with_its_weights(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    report = run(write_zip(tmp_path / "canvas.zip", CANVAS), to)
    assert report.format is Format.CANVAS
    assert placed(report) == {
        "anon_b9Zt1/har": ("new", ("har.py",)),
        "anon_x7Kq2/har": ("new", ("har.py",)),
        "doejane/har": ("new", ("har.py", "har.safetensors")),
        "nunezjose/har": ("new", ("har.py",)),
        "smithjohn/har": ("new", ("har.py",)),
    }
    assert (to / "doejane" / "har.py").read_bytes() == SOURCE
    assert (to / "doejane" / "har.safetensors").read_bytes() == WEIGHTS
    assert (to / "smithjohn" / "har.py").read_bytes().endswith(b"# resubmitted\n")
    assert reasons(report) == {
        "doejane_12345_text.html": "a text entry or link, not an uploaded file",
        "núñezjosé_333_681_notes.pdf": "not a .py file or weights",
        "张伟_555_684_har.py": "the name '张伟' does not make a valid student id; place it by hand",
    }
    # every folder is a submission the grader can find
    found = discover(to, KNOWN, 1 << 20)
    assert [(s.student, s.problem) for s in found] == [
        (name, None) for name in ("anon_b9Zt1", "anon_x7Kq2", "doejane", "nunezjose", "smithjohn")
    ]


def test_canvas_lateness_is_recorded_for_the_board(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    report = run(write_zip(tmp_path / "canvas.zip", CANVAS), to)
    assert sorted(report.late) == ["anon_b9Zt1", "smithjohn"]
    assert student_file(to, "smithjohn") == {
        "lms_user_id": "222",
        "late": True,
        "source": "canvas",
    }
    assert student_file(to, "doejane") == {
        "lms_user_id": "12345",
        "late": False,
        "source": "canvas",
    }
    assert student_file(to, "anon_x7Kq2") == {"late": False, "source": "canvas"}  # no user id
    text = (to / "smithjohn" / "student.toml").read_text()
    assert text.startswith("# written by `grader collect`")


def test_late_stays_late_and_hand_written_keys_are_kept(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    (to / "doejane").mkdir(parents=True)
    (to / "doejane" / "student.toml").write_text('pseudonym = "Otter"\nlate = true\n')
    run(write_zip(tmp_path / "canvas.zip", {"doejane_12345_678_mnist.py": SOURCE}), to)
    assert student_file(to, "doejane") == {
        "pseudonym": "Otter",
        "lms_user_id": "12345",
        "late": True,
        "source": "canvas",
    }


def test_an_unreadable_student_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    (to / "doejane").mkdir(parents=True)
    (to / "doejane" / "student.toml").write_text("late = [\n")
    report = run(write_zip(tmp_path / "canvas.zip", {"doejane_12345_678_har.py": SOURCE}), to)
    assert (to / "doejane" / "student.toml").read_text() == "late = [\n"
    [(path, reason)] = reasons(report).items()
    assert path == str(to / "doejane" / "student.toml")
    assert reason.startswith("unreadable, not updated (")


def test_two_students_of_one_name_are_reported_not_merged(tmp_path: Path) -> None:
    export = {"leeann_1_10_har.py": SOURCE, "leeann_2_11_har.py": SOURCE + b"# other\n"}
    to = tmp_path / "submissions"
    report = run(write_zip(tmp_path / "canvas.zip", export), to)
    assert report.placed == []
    assert set(reasons(report).values()) == {
        "students leeann (id 1), leeann (id 2) would share one folder; place by hand"
    }
    assert list(to.iterdir()) == []


def test_the_lms_user_id_is_kept_and_read_back_by_the_grader(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    run(write_zip(tmp_path / "canvas.zip", {"doejane_4455_678_har.py": SOURCE}), to)
    assert 'lms_user_id = "4455"' in (to / "doejane" / "student.toml").read_text()
    [found] = discover(to, KNOWN, 1 << 20)
    assert found.meta.lms_user_id == "4455" and found.meta.ignored == ()
    assert StudentMeta.from_dict(found.meta.to_dict()).lms_user_id == "4455"  # via the store


def test_another_lms_id_for_a_folder_is_reported_not_overwritten(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    (to / "doejane").mkdir(parents=True)
    (to / "doejane" / "student.toml").write_text('lms_user_id = "4455"\n')
    report = run(write_zip(tmp_path / "canvas.zip", {"doejane_9999_678_har.py": SOURCE}), to)
    assert student_file(to, "doejane")["lms_user_id"] == "4455"
    assert reasons(report) == {
        str(to / "doejane" / "student.toml"): "lms_user_id '4455' kept, the export says "
        "'9999': is this folder another student of the same name?"
    }


def test_of_a_file_uploaded_again_the_newest_is_taken_and_said(tmp_path: Path) -> None:
    export = {
        "doejane_4455_701_har.py": SOURCE + b"# first\n",
        "doejane_4455_733_har-1.py": SOURCE + b"# second\n",
        "doejane_4455_702_har.safetensors": WEIGHTS,
        "smithjohn_222_690_har-2.py": SOURCE + b"# third\n",  # renamed, yet uploaded first
        "smithjohn_222_710_har-1.py": SOURCE + b"# newest\n",
    }
    to = tmp_path / "submissions"
    report = run(write_zip(tmp_path / "canvas.zip", export), to)
    assert reasons(report) == {}
    assert (to / "doejane" / "har.py").read_bytes().endswith(b"# second\n")
    assert (to / "smithjohn" / "har.py").read_bytes().endswith(b"# newest\n")
    assert {p.student: (p.files, p.newest) for p in report.placed} == {
        "doejane": (
            ("har.py", "har.safetensors"),
            "took har-1.py, the newest of har.py, har-1.py (by upload id)",
        ),
        "smithjohn": (
            ("har.py",),
            "took har-1.py, the newest of har-2.py, har-1.py (by upload id)",
        ),
    }


def test_moodle_renamed_uploads_are_ordered_by_their_number(tmp_path: Path) -> None:
    folder = "Jane Doe_101_assignsubmission_file_/"
    export = {
        folder + "har.py": SOURCE,
        folder + "har (2).py": SOURCE + b"# newest\n",
        folder + "har (1).py": SOURCE + b"# second\n",
    }
    to = tmp_path / "submissions"
    report = run(write_zip(tmp_path / "moodle.zip", export), to)
    assert (to / "jane-doe" / "har.py").read_bytes().endswith(b"# newest\n")
    assert [p.newest for p in report.placed] == [
        "took har (2).py, the newest of har.py, har (1).py, har (2).py (by the number the LMS "
        "adds to a name)"
    ]


# --- Moodle -----------------------------------------------------------------------------------


def test_a_moodle_export_in_folders_is_placed(tmp_path: Path) -> None:
    export = {
        "Jane Doe_101_assignsubmission_file_/har.py": SOURCE,
        "Jane Doe_101_assignsubmission_file_/weights/har.pt": WEIGHTS,
        "Jane Doe_101_assignsubmission_onlinetext_/onlinetext.html": b"<p>hi</p>",
        "Mary-Jane O\u2019Neil_102_assignsubmission_file_/mnist.py": SOURCE,
        "Participant_103_assignsubmission_file_/har.py": SOURCE,
        "René Müller_104_assignsubmission_file_har.py": SOURCE,  # downloaded without folders
    }
    to = tmp_path / "submissions"
    report = run(write_zip(tmp_path / "moodle.zip", export), to)
    assert report.format is Format.MOODLE
    assert placed(report) == {
        "jane-doe/har": ("new", ("har.py", "har.pt")),
        "mary-jane-o-neil/mnist": ("new", ("mnist.py",)),
        "participant-103/har": ("new", ("har.py",)),
        "rene-muller/har": ("new", ("har.py",)),
    }
    assert reasons(report) == {
        "Jane Doe_101_assignsubmission_onlinetext_/onlinetext.html": (
            "a Moodle onlinetext entry, not an uploaded file"
        )
    }
    # Moodle's download does not say who was late: nothing is claimed either way
    assert student_file(to, "jane-doe") == {"lms_user_id": "101", "source": "moodle"}
    assert report.late == []


# --- a plain folder ---------------------------------------------------------------------------


def test_a_folder_of_student_folders_is_placed_and_links_are_not_followed(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "alice").mkdir(parents=True)
    (export / "alice" / "my_mnist.py").write_bytes(SOURCE)
    (export / "alice" / "mnist.safetensors").write_bytes(WEIGHTS)
    (export / "bob smith").mkdir()
    (export / "bob smith" / "har.py").write_bytes(SOURCE)
    (export / "carol").mkdir()
    (export / "carol" / "har.py").symlink_to(tmp_path / "secret.py")
    (tmp_path / "secret.py").write_bytes(b"secret")
    (export / "README.txt").write_text("collected by hand")
    to = tmp_path / "submissions"
    report = run(export, to)
    assert report.format is Format.FOLDER
    assert placed(report) == {"alice/mnist": ("new", ("mnist.py", "mnist.safetensors"))}
    assert reasons(report) == {
        "README.txt": "not in a student's folder",
        "bob smith/har.py": "folder name 'bob smith' is not a valid student id",
        "carol/har.py": "a symlink; not followed",
    }
    assert not (to / "alice" / "student.toml").exists()  # a folder says nothing of lateness


def test_collecting_into_the_export_itself_is_refused(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "har.py").write_bytes(SOURCE)
    with pytest.raises(ExportError, match=r"is inside the export"):
        run(tmp_path, tmp_path / "submissions")


# --- choosing files ---------------------------------------------------------------------------


def test_files_are_matched_to_assignments_by_name_or_by_the_option(tmp_path: Path) -> None:
    export = {
        "doejane_1_10_har.py": SOURCE,
        "doejane_1_11_helpers.py": SOURCE,
        "smithjohn_2_12_solution.py": SOURCE,
        "smithjohn_2_13_model.pt": WEIGHTS,
        "leeann_3_14_a.py": SOURCE,
        "leeann_3_15_b.py": SOURCE,
        "leeann_3_16_har.pt": WEIGHTS,
        "leeann_3_17_mnist.pt": WEIGHTS,
    }
    zipped = write_zip(tmp_path / "canvas.zip", export)
    report = run(zipped, tmp_path / "by-name")
    assert placed(report) == {"doejane/har": ("new", ("har.py",))}
    unnamed = "its name names none of the assignments (har, mnist); pass --assignment"
    assert reasons(report) == {
        "doejane_1_11_helpers.py": unnamed,
        "smithjohn_2_12_solution.py": unnamed,
        "smithjohn_2_13_model.pt": "weights without their Python file",
        "leeann_3_14_a.py": unnamed,
        "leeann_3_15_b.py": unnamed,
        "leeann_3_16_har.pt": "weights without their Python file",
        "leeann_3_17_mnist.pt": "weights without their Python file",
    }
    report = run(zipped, tmp_path / "by-option", assignment="har")
    assert placed(report) == {
        "doejane/har": ("new", ("har.py",)),  # the file named har.py wins over helpers.py
        "smithjohn/har": ("new", ("har.py", "har.pt")),
    }
    assert reasons(report) == {
        "leeann_3_14_a.py": "several files for har: a.py, b.py",
        "leeann_3_15_b.py": "several files for har: a.py, b.py",
        "leeann_3_16_har.pt": "several weights files",
        "leeann_3_17_mnist.pt": "several weights files",
    }


def test_files_over_the_size_limits_are_reported(tmp_path: Path) -> None:
    export = {"doejane_1_10_har.py": SOURCE, "doejane_1_11_har.pt": b"w" * 2048}
    to = tmp_path / "submissions"
    report = run(write_zip(tmp_path / "canvas.zip", export), to, max_weights_bytes=1024)
    assert reasons(report) == {"doejane_1_11_har.pt": "larger than 1.0 KB, the limit for .pt files"}
    assert not (to / "doejane").exists()  # all of a submission or nothing


def test_a_member_that_holds_more_than_its_listing_says_is_cut_off() -> None:
    member = Member("x.py", 10, lambda limit: b"y" * limit)  # the header says 10 bytes
    with pytest.raises(TooBig):
        member.read(100)


# --- never overwrite silently -----------------------------------------------------------------


def test_a_changed_file_is_kept_unless_replace_is_asked_for(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    first = write_zip(tmp_path / "first.zip", {"doejane_1_10_har.py": SOURCE,
                                                "doejane_1_11_har.pt": WEIGHTS})  # fmt: skip
    assert placed(run(first, to))["doejane/har"][0] == "new"
    assert placed(run(first, to))["doejane/har"][0] == "unchanged"
    second = write_zip(tmp_path / "second.zip", {"doejane_1_12_har.py": SOURCE + b"# v2\n"})
    report = run(second, to)
    assert report.placed == []
    assert reasons(report) == {
        "doejane_1_12_har.py": (
            f"kept {to / 'doejane'}: har.py, har.pt differs from the export "
            "(--replace takes the export's)"
        )
    }
    assert (to / "doejane" / "har.py").read_bytes() == SOURCE
    report = run(second, to, replace=True)
    assert placed(report) == {"doejane/har": ("replaced", ("har.py",))}
    assert (to / "doejane" / "har.py").read_bytes() == SOURCE + b"# v2\n"
    assert not (to / "doejane" / "har.pt").exists()  # old weights must not meet new code


def test_a_folder_differing_only_in_case_is_not_created_beside(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    (to / "DoeJane").mkdir(parents=True)
    report = run(write_zip(tmp_path / "canvas.zip", {"doejane_1_10_har.py": SOURCE}), to)
    assert reasons(report) == {
        "doejane_1_10_har.py": f"{to / 'doejane'}: DoeJane exists; ids must not differ only in case"
    }
    assert sorted(p.name for p in to.iterdir()) == ["DoeJane"]


# --- reading the zip safely -------------------------------------------------------------------


def test_unsafe_members_are_reported_and_nothing_lands_outside(tmp_path: Path) -> None:
    path = tmp_path / "export" / "canvas.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../doejane_1_10_har.py", SOURCE)
        archive.writestr("/abs_2_11_har.py", SOURCE)
        archive.writestr("C:/win_3_12_har.py", SOURCE)
        link = zipfile.ZipInfo("link_4_13_har.py")
        link.external_attr = 0o120777 << 16  # a symlink member
        archive.writestr(link, "/etc/passwd")
        archive.writestr("ok_5_14_har.py", SOURCE)
        archive.writestr("__MACOSX/._ok_5_14_har.py", b"junk")
    to = tmp_path / "export" / "submissions"
    report = run(path, to)
    assert reasons(report) == {
        "../doejane_1_10_har.py": "a path that leaves the export",
        "/abs_2_11_har.py": "an absolute path",
        "C:/win_3_12_har.py": "an absolute path",
        "link_4_13_har.py": "a symlink; not followed",
    }
    assert placed(report) == {"ok/har": ("new", ("har.py",))}
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "export/canvas.zip",
        "export/submissions/ok/har.py",
        "export/submissions/ok/student.toml",
    ]


def test_the_format_is_told_from_the_names(tmp_path: Path) -> None:
    def members(*paths: str) -> list[Member]:
        return [Member(p, 1, lambda limit: b"") for p in paths]

    export = tmp_path / "x.zip"
    assert detect_format(members("a_1_2_har.py", "b_3_4_har.py"), export) is Format.CANVAS
    moodle = members("A B_1_assignsubmission_file_/har.py")
    assert detect_format(moodle, export) is Format.MOODLE
    assert detect_format(members("alice/har.py", "bob/har.py"), export) is Format.FOLDER
    with pytest.raises(ExportError) as info:
        detect_format(members("har.py", "notes.txt"), export)
    assert str(info.value) == (
        f"cannot tell the format of {export} (canvas, moodle or folder); pass --format"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("doejane", "doejane"),
        ("Jane Doe", "jane-doe"),
        ("núñezjosé", "nunezjose"),
        ("Zoë O\u2019Brien-Smith", "zoe-o-brien-smith"),
        ("张伟", None),
        ("Jane 张", None),  # dropping a part of a name would be a guess
        ("!!!", None),
        ("a" * 65, None),
    ],
)
def test_student_ids_from_names(name: str, expected: str | None) -> None:
    assert student_id(name) == expected


# --- the command ------------------------------------------------------------------------------


def invoke(*args: str | Path) -> tuple[int, str, str]:
    try:  # click 8.1 mixes stderr into stdout unless told not to; 8.2 always keeps both
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    result = runner.invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def no_spec_folder_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADER_ASSIGNMENTS", raising=False)


def test_the_command_lists_what_it_placed_and_what_not(tmp_path: Path) -> None:
    export = write_zip(tmp_path / "canvas.zip", CANVAS)
    code, out, err = invoke("collect", export, "--to", tmp_path / "submissions")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:5] == [
        "new        anon_b9Zt1/: har.py  (late)",
        "new        anon_x7Kq2/: har.py",
        "new        doejane/: har.py, har.safetensors",
        "new        nunezjose/: har.py",
        "new        smithjohn/: har.py  (late)",
    ]
    assert lines[5] == "not placed:"
    assert lines[-1] == (
        f"5 placed in {tmp_path / 'submissions'} (5 new, 0 replaced), 3 not placed, 2 late"
    )
    assert f"{export}: a canvas export" in err


def test_the_command_says_which_upload_it_took(tmp_path: Path) -> None:
    export = {"doejane_4455_701_har.py": SOURCE, "doejane_4455_733_har-1.py": SOURCE + b"#\n"}
    code, out, _ = invoke("collect", write_zip(tmp_path / "c.zip", export), "--to", tmp_path / "s")
    assert code == 0
    assert out.splitlines() == [
        "new        doejane/: har.py",
        "           har: took har-1.py, the newest of har.py, har-1.py (by upload id)",
        f"1 placed in {tmp_path / 's'} (1 new, 0 replaced), 0 not placed, 0 late, 1 uploaded "
        "several times (the newest taken)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--assignment", "cifar"], "unknown assignment 'cifar' (known: har, mnist)"),
        (["--format", "blackboard"], None),
    ],
)
def test_the_command_refuses_bad_options(
    tmp_path: Path, args: list[str], message: str | None
) -> None:
    export = write_zip(tmp_path / "canvas.zip", CANVAS)
    code, out, err = invoke("collect", export, "--to", tmp_path / "submissions", *args)
    assert code == (1 if message else 2) and out == ""
    if message:
        assert err.splitlines()[-1] == f"Error: {message}"
    assert not (tmp_path / "submissions").exists()


def test_an_export_that_is_not_a_zip_is_one_error_line(tmp_path: Path) -> None:
    export = tmp_path / "submissions.zip"
    export.write_text("not a zip")
    code, out, err = invoke("collect", export, "--to", tmp_path / "submissions")
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == (
        f"Error: {export} is not a readable zip file (File is not a zip file)"
    )


def test_symlinked_target_files_are_not_written_through(tmp_path: Path) -> None:
    to = tmp_path / "submissions"
    (to / "doejane").mkdir(parents=True)
    outside = tmp_path / "outside.py"
    outside.write_bytes(b"mine")
    os.symlink(outside, to / "doejane" / "har.py")
    report = run(write_zip(tmp_path / "canvas.zip", {"doejane_1_10_har.py": SOURCE}), to,
                 replace=True)  # fmt: skip
    assert outside.read_bytes() == b"mine"
    assert reasons(report) == {
        "doejane_1_10_har.py": f"{to / 'doejane' / 'har.py'} is not a regular file; nothing written"
    }
