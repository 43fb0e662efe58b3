"""Anonymity that holds: no pseudonym can stand for another name the board shows (so no two rows
share a name), and `grader leaderboard --anonymize` writes into a folder of anonymized files
only, whose picture no later run replaces."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import Result as Invoked
from matplotlib.text import Text
from support.cli import invoke
from support.course import SPECS, STUDENTS, write_course
from support.paths import ASSIGNMENTS
from support.results import graded

import grader.publish.plot
from grader.core.results import Result
from grader.core.submission import StudentMeta, read_meta
from grader.publish.anonymize import anonymize, derived_id, public_names, refusals
from grader.publish.board import (
    BoardOptions,
    build_board,
    leaderboard,
    write_board,
    write_leaderboard,
)
from grader.store.sqlite import Store

SECRET = b"s" * 32
FORMATS = ["csv", "md", "html", "json"]
PUBLISHED = [
    "leaderboard-anonymized.png", "leaderboard.csv", "leaderboard.html", "leaderboard.json",
    "leaderboard.md",
]  # fmt: skip


def baseline() -> Result:
    return graded("sklearn:logistic_regression", 0.95, kind="baseline")


ROWS = [graded("ann", 0.98), graded("bob", 0.97), graded("cy", 0.96), baseline()]


def shown_names(fmt: str, text: str) -> list[str]:
    """The student column of every student row of a board file, in order."""
    if fmt == "csv":
        return [r["student"] for r in csv.DictReader(text.splitlines()) if r["kind"] == "student"]
    if fmt == "json":
        return [r["student"] for a in json.loads(text)["assignments"] for r in a["rows"]]
    if fmt == "html":
        rows = re.findall(r'<tr class="row[^"]*" data-kind="student".*?</tr>', text, re.DOTALL)
        return [re.findall(r"<td[^>]*>(.*?)</td>", r, re.DOTALL)[1] for r in rows]
    students = text.split("Reference rows")[0]
    rows = [line for line in students.splitlines() if re.match(r"\| \d* \| ", line)]
    return [re.split(r"(?<!\\)\|", row)[2].strip() for row in rows]


# --- pseudonyms that would pass for another name -----------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_pseudonym_that_is_another_students_derived_id_is_refused(
    tmp_path: Path, fmt: str
) -> None:
    """The impersonation measured: bob names himself after ann's id on the anonymized board."""
    meta = {"bob": StudentMeta(pseudonym=derived_id("ann", SECRET))}
    board = build_board(ROWS, SPECS, meta=meta, secret=SECRET)
    (path,) = [p for p in write_board(board, tmp_path, [fmt]) if p.suffix == f".{fmt}"]
    names = shown_names(fmt, path.read_text())
    assert names == [derived_id(s, SECRET) for s in ("ann", "bob", "cy")]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("pseudonym", "reason"),
    [
        ("Ann", "is a student id"),
        ("BOB", "is a student id"),  # bob's own id: it would unmask him
        ("\uff41\uff4e\uff4e", "is a student id"),  # ann in fullwidth letters
        ("SKLEARN:logistic_regression", "is a reference row's name"),
        ("anon-0123456789", "starts with 'anon-', as derived ids do"),
        ("Twin", "was chosen by another student too"),
    ],
)
def test_pseudonyms_that_could_pass_for_another_name_are_refused(
    pseudonym: str, reason: str
) -> None:
    meta = {"bob": StudentMeta(pseudonym=pseudonym), "cy": StudentMeta(pseudonym="twin")}
    refused = refusals(["ann", "bob", "cy"], meta, ["sklearn:logistic_regression"])
    assert refused["bob"] == f"'pseudonym' {pseudonym!r} {reason}"
    names = public_names(["ann", "bob", "cy"], meta, SECRET, ["sklearn:logistic_regression"])
    assert names["bob"] == derived_id("bob", SECRET)
    assert len(set(names.values())) == 3


def test_a_pseudonym_of_its_own_is_shown() -> None:
    meta = {"bob": StudentMeta(pseudonym="Night Owl"), "cy": StudentMeta(pseudonym="Annie")}
    assert refusals(["ann", "bob", "cy"], meta) == {}
    names = public_names(["ann", "bob", "cy"], meta, SECRET)
    assert (names["bob"], names["cy"]) == ("Night Owl", "Annie")


def test_the_lms_user_id_is_not_kept_in_public_metadata() -> None:
    meta = {"bob": StudentMeta(pseudonym="Night Owl", lms_user_id="4455"), "cy": StudentMeta()}
    rows = [graded("bob", 0.97), graded("cy", 0.96)]
    _, public = anonymize(rows, meta, SECRET)
    assert public["Night Owl"] == StudentMeta(pseudonym="Night Owl")
    assert all(m.lms_user_id is None for m in public.values())


@pytest.mark.parametrize("pseudonym", ["anon-q7ysk2mx4a", "ANON-x", "\uff21non-x"])
def test_student_toml_refuses_a_pseudonym_shaped_like_a_derived_id(
    tmp_path: Path, pseudonym: str
) -> None:
    path = tmp_path / "student.toml"
    path.write_text(f'pseudonym = "{pseudonym}"\nlate = true\n', encoding="utf-8")
    meta = read_meta(path)
    assert (meta.pseudonym, meta.late) == (None, True)
    assert meta.ignored == (f"'pseudonym' {pseudonym!r} starts with 'anon-', as derived ids do",)


# --- grader leaderboard --anonymize: a publish folder ------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "results" / "grades.sqlite"
    store = Store(path)
    for row in ROWS:
        store.record(row)
    store.record_students({"bob": {"pseudonym": "Ann"}, "cy": {"pseudonym": "Night Owl"}}, "t")
    return path


def publish(store: Path, *formats: str) -> Invoked:
    args = [a for f in formats for a in ("--format", f)]
    out = store.parent
    return invoke("leaderboard", "--out", out, "--assignments", ASSIGNMENTS, "--anonymize", *args)


def test_anonymize_writes_a_folder_of_anonymized_files_only(store: Path) -> None:
    out = store.parent
    result = publish(store, *FORMATS)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "publish").iterdir()) == PUBLISHED
    assert sorted(p.name for p in out.iterdir()) == ["grades.sqlite", "publish"]
    md = (out / "publish" / "leaderboard.md").read_text()
    assert md.endswith("](leaderboard-anonymized.png)\n")
    assert "bob/student.toml: ignored: 'pseudonym' 'Ann' is a student id; anonymized boards " \
        "show a derived id" in result.stderr  # fmt: skip
    assert f"{out / 'publish' / 'leaderboard.md'}" in result.stderr.splitlines()[-1]
    for path in (out / "publish").glob("leaderboard.*"):
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text())
        assert not _ids_in(text), path.name
        assert "Night Owl" in text


def test_a_later_publish_leaves_only_its_own_files(store: Path) -> None:
    assert publish(store, *FORMATS).exit_code == 0
    result = publish(store, "html")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (store.parent / "publish").iterdir()] == ["leaderboard.html"]


def test_a_publish_folder_holding_anything_else_is_refused(store: Path) -> None:
    folder = store.parent / "publish"
    folder.mkdir()
    shutil.copy(store, folder / "grades.sqlite")  # say, `grader run --out results/publish`
    (folder / "leaderboard.png").write_bytes(b"real ids")
    result = publish(store, "html")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: {folder} holds grades.sqlite, leaderboard.png, which no anonymized board wrote; "
        "move that out: the publish folder holds anonymized files only"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["grades.sqlite", "leaderboard.png"]


def test_a_run_after_publishing_leaves_the_publish_folder_alone(store: Path) -> None:
    out = store.parent
    assert publish(store, *FORMATS).exit_code == 0
    before = {p.name: p.read_bytes() for p in (out / "publish").iterdir()}
    write_leaderboard(ROWS, SPECS, out)  # what every `grader run` writes: real ids
    assert {p.name: p.read_bytes() for p in (out / "publish").iterdir()} == before
    assert (out / "leaderboard.png").read_bytes() != before["leaderboard-anonymized.png"]


def test_without_anonymize_the_folder_is_out(store: Path) -> None:
    out = store.parent
    result = invoke("leaderboard", "--out", out, "--assignments", ASSIGNMENTS, "--format", "md")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "grades.sqlite", "leaderboard.md", "leaderboard.png"]  # fmt: skip
    assert "ignored" not in result.stderr  # pseudonyms matter to anonymized boards alone


# --- end to end: publish, a student impersonates, a new run, publish again ---------------


@pytest.mark.slow
def test_published_files_never_show_a_student_id_whatever_ran_before(
    tmp_path: Path, tiny_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = write_course(tmp_path, tiny_data_dir)
    (course["submissions"] / "cy" / "student.toml").write_text('pseudonym = "Night Owl"\n')
    run = [
        "run", course["submissions"], "--out", course["out"], "--assignments",
        course["assignments"], "--data-dir", course["data"], "--cache-dir", course["cache"],
        "--workers", "1",
    ]  # fmt: skip
    formats = [a for f in FORMATS for a in ("--format", f)]
    board = ["leaderboard", "--out", course["out"], "--anonymize", *formats]
    board += ["--assignments", course["assignments"]]
    published = course["out"] / "publish"

    assert invoke(*run).exit_code == 0
    assert invoke(*board).exit_code == 0
    # ben reads ana's derived id off the published board and takes it as his pseudonym.
    ana = derived_id("ana", Store(course["out"] / "grades.sqlite").secret())
    assert ana in (published / "leaderboard.csv").read_text()
    (course["submissions"] / "ben" / "student.toml").write_text(f'pseudonym = "{ana}"\n')
    again = invoke(*run)
    assert again.exit_code == 0, again.output
    assert f"ben/student.toml: ignored: 'pseudonym' '{ana}' starts with 'anon-'" in again.stderr
    assert invoke(*board).exit_code == 0
    assert invoke(*run).exit_code == 0  # a new run: it draws OUT/leaderboard.png again

    assert sorted(p.name for p in published.iterdir()) == PUBLISHED
    texts = {p.name: p.read_text() for p in published.iterdir() if p.suffix != ".png"}
    for name, text in texts.items():
        assert not _ids_in(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)), name
        names = shown_names(name.rsplit(".", 1)[1], text)
        assert len(names) == len(set(names)) == len(STUDENTS), (name, names)
        assert "Night Owl" in names
    # Every picture published is what the anonymized board draws: render it again, reading
    # the text of every label, title and legend drawn.
    drawn = _drawn_texts(monkeypatch)
    again_folder = tmp_path / "again"
    options = BoardOptions(
        course["out"] / "grades.sqlite", course["assignments"], again_folder,
        tuple(FORMATS), anonymize=True,
    )  # fmt: skip
    leaderboard(options, lambda _: None)
    # A label that would cover another is left off (the picture says how many), so not every
    # public name need be drawn; every name drawn is a public one.
    labels = {name for text in drawn for name in text.split(", ")}
    public = set(names) | {"Night Owl"}
    assert labels & public and not _ids_in(" ".join(drawn))
    for path in again_folder.iterdir():
        assert path.read_bytes() == (published / path.name).read_bytes(), path.name


def _ids_in(text: str) -> list[str]:
    ids = [*STUDENTS, "ann", "bob", "cy"]
    return [s for s in ids if re.search(rf"(?<![A-Za-z0-9]){s}(?![A-Za-z0-9])", text, re.I)]


def _drawn_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every picture drawn from now on (labels, titles, legends)."""
    drawn: list[str] = []
    original = grader.publish.plot.png_bytes

    def spy(figure, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.extend(t.get_text() for t in figure.findobj(Text))
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(grader.publish.plot, "png_bytes", spy)
    return drawn
