"""Copy detection: code with the starter taken out, the models' mistakes, the verdicts, the
review file, the files an instructor reads, and the board's similar_to column."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.cli import invoke
from support.copies import MAKERS
from support.inert import hidden
from support.paths import REPO

from grader.core.review import ReviewError, load_reviewed_pairs, pair_key
from grader.core.spec import Similarity
from grader.similarity import behaviour, code
from grader.similarity.pairs import Entry, Verdict, pairs, verdict
from grader.similarity.predictions import pack, unpack
from grader.similarity.report import COLUMNS, Findings, write

FRANK = (REPO / "submissions" / "frank" / "har.py").read_text()
ALICE = (REPO / "submissions" / "alice" / "har.py").read_text()
STARTER = (REPO / "starter" / "har.py").read_text()
LIMITS = Similarity()


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return code.base_kgrams([STARTER])


def test_packed_predictions_come_back_as_they_were() -> None:
    classes = np.array([0, 5, 3, 3, 1], dtype=np.int64)
    assert np.array_equal(unpack(pack(classes), 5), classes)  # type: ignore[arg-type]
    wide = np.array([0, 300, 999])
    assert np.array_equal(unpack(pack(wide), 3), wide)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "not base64!", "aGVsbG8=", pack(np.arange(4))])
def test_damaged_or_mismatched_predictions_are_none(text: str) -> None:
    assert unpack(text, 5) is None


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_planted_copies_share_code_past_the_thresholds(kind: str, base: np.ndarray) -> None:
    match = code.compare(code.source(FRANK, base), code.source(MAKERS[kind](FRANK), base))
    assert match.similarity >= LIMITS.min_code_similarity, match
    assert match.overlap >= LIMITS.min_overlap, match


def test_renaming_and_a_new_layout_change_nothing(base: np.ndarray) -> None:
    match = code.compare(code.source(FRANK, base), code.source(MAKERS["renamed"](FRANK), base))
    assert match.similarity == 1.0
    this = FRANK.replace("self", "this")  # no method here: nothing to rename, still the same
    assert code.compare(code.source(FRANK, base), code.source(this, base)).similarity == 1.0


def test_honest_files_share_little(base: np.ndarray) -> None:
    match = code.compare(code.source(FRANK, base), code.source(ALICE, base))
    assert verdict(match, None, LIMITS) is Verdict.NONE
    assert match.similarity < 0.3


def test_the_starter_is_taken_out(base: np.ndarray) -> None:
    """Two students who changed only the starter's epochs share nothing of their own."""
    one = STARTER.replace('"epochs": 25,', '"epochs": 24,')
    two = STARTER.replace('"epochs": 25,', '"epochs": 26,')
    assert one != STARTER and two != STARTER
    match = code.compare(code.source(one, base), code.source(two, base))
    assert match.overlap < LIMITS.min_overlap
    assert code.source(STARTER, base).own_size == 0


def test_code_figures_are_the_same_in_every_process() -> None:
    """copydetect hashes with Python's salted hash(): every k-gram is kept, so no figure
    depends on the salt."""
    script = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from grader.similarity import code\n"
        "from support.copies import reordered\n"
        "b = code.base_kgrams([open('starter/har.py').read()])\n"
        "f = open('submissions/frank/har.py').read()\n"
        "m = code.compare(code.source(f, b), code.source(reordered(f), b))\n"
        "print(repr(m.similarity), m.overlap, m.spans)\n"
    )
    said = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": salt},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for salt in ("1", "2", "3")
    }
    assert len(said) == 1, said


@pytest.mark.parametrize(
    "text",
    [
        "def build_model(:\n",  # not Python
        "x = " + "(" * 5000 + ")" * 5000 + "\n",  # too deep for the parser
        "\x00\ufffd\u202e" * 100,
        "",
    ],
)
def test_any_file_is_compared_without_raising(text: str, base: np.ndarray) -> None:
    match = code.compare(code.source(text, base), code.source(FRANK, base))
    assert 0.0 <= match.similarity <= 1.0


def test_error_consistency_of_identical_independent_and_perfect_models() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 5000)
    wrong = np.where(rng.random(5000) < 0.1, (labels + 1) % 6, labels)
    same = behaviour.compare({0: wrong}, {0: wrong.copy()}, labels)
    assert same is not None and same.error_consistency == 1.0 and same.shared_wrong == 1.0
    other = np.where(rng.random(5000) < 0.1, (labels + 2) % 6, labels)
    apart = behaviour.compare({0: wrong}, {0: other}, labels)
    assert apart is not None and apart.error_consistency is not None
    assert abs(apart.error_consistency) < 0.1 and apart.shared_wrong == 0.0
    perfect = behaviour.compare({0: labels}, {0: labels}, labels)
    assert perfect is not None and perfect.error_consistency is None
    assert perfect.shared_wrong is None
    assert behaviour.compare({0: labels}, {1: labels}, labels) is None  # no seed in common


def test_only_the_seeds_both_were_graded_on_are_compared() -> None:
    labels = np.array([0, 1, 0, 1])
    seen = behaviour.compare(
        {0: np.array([1, 1, 0, 1]), 1: np.array([0, 0, 0, 1])},
        {1: np.array([0, 0, 0, 1]), 2: np.array([1, 1, 1, 1])},
        labels,
    )
    assert seen is not None and seen.seeds == (1,) and seen.errors == (1, 1)


def _entry(
    student: str,
    text: str,
    base: np.ndarray,
    predicted: np.ndarray | None = None,
    digest: str = "",
) -> Entry:
    classes = {} if predicted is None else {0: predicted}
    return Entry(student, digest or f"hash-{student}", code.source(text, base), classes)


def test_verdicts_and_their_order(base: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, 3000)
    models = [np.where(rng.random(3000) < 0.08, (labels + k) % 6, labels) for k in (1, 2, 3)]
    entries = [
        _entry("ann", FRANK, base, models[0]),
        _entry("bea", MAKERS["renamed"](FRANK), base, models[0]),  # code and mistakes
        _entry("cal", ALICE, base, models[1]),
        _entry("dan", ALICE.replace("256", "128"), base, models[1]),  # the same mistakes
        _entry("eve", ALICE, base, models[2], digest="hash-cal"),  # cal's very file
        _entry("fay", MAKERS["hparams"](FRANK), base),  # not graded: code alone
    ]
    found = pairs("har", entries, labels, LIMITS)
    said = {(p.a.student, p.b.student): p.verdict for p in found}
    assert said[("ann", "bea")] is Verdict.CODE_ERRORS
    assert said[("cal", "eve")] is Verdict.IDENTICAL
    assert said[("cal", "dan")] is Verdict.ERRORS
    assert said[("ann", "fay")] is Verdict.CODE and said[("bea", "fay")] is Verdict.CODE
    assert said[("ann", "cal")] is Verdict.NONE
    ranks = [list(Verdict).index(p.verdict) for p in found]
    assert ranks == sorted(ranks)
    assert len(found) == 15


def test_a_reviewed_pair_keeps_its_verdict_but_is_no_signal(base: np.ndarray) -> None:
    labels = np.zeros(10, dtype=np.int64)
    entries = [_entry("ann", FRANK, base), _entry("bea", FRANK, base, digest="hash-ann")]
    cleared = frozenset({pair_key(("bea", "hash-ann"), ("ann", "hash-ann"))})
    (pair,) = pairs("har", entries, labels, LIMITS, cleared)
    assert pair.verdict is Verdict.IDENTICAL and pair.reviewed and not pair.signal


def test_the_review_file_reads_pairs_in_either_order(tmp_path: Path) -> None:
    path = tmp_path / "reviewed.toml"
    path.write_text(
        '[[reviewed]]\nstudent = "x"\ncontent_hash = "h"\n'
        '[[pair]]\nstudents = ["bea", "ann"]\ncontent_hashes = ["hb", "ha"]\nnote = "partners"\n'
    )
    assert load_reviewed_pairs(path) == {("ann", "ha", "bea", "hb")}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[[pair]]\nstudents = ['a']\ncontent_hashes = ['h', 'i']\n", "'pair[0].students' must"),
        ("[[pair]]\nstudents = ['a', 'b']\ncontent_hashes = ['h', 3]\n", "'pair[0].content_ha"),
        ("[[pair]]\nstudents = ['a', 'b']\ncontent_hashes = ['h', 'i']\nwhy = 1\n", "why' is not"),
        ("pair = 3\n", "expected only [[reviewed]] and [[pair]] tables"),
    ],
)
def test_review_file_pair_errors_name_the_file_and_key(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "reviewed.toml"
    path.write_text(text)
    with pytest.raises(ReviewError) as caught:
        load_reviewed_pairs(path)
    assert str(caught.value).startswith(f"{path}: ") and error in str(caught.value)


HOSTILE = "=cmd|' /C calc'!A0\u202e<script>alert(1)</script>"


def test_the_files_name_every_pair_and_keep_student_text_inert(
    tmp_path: Path, base: np.ndarray
) -> None:
    labels = np.zeros(4, dtype=np.int64)
    code_text = FRANK + '\n# </pre><script>alert("x")</script> \u202e\n'
    entries = [
        _entry("ann", code_text, base, np.array([0, 1, 1, 0])),
        _entry(HOSTILE, MAKERS["reordered"](code_text), base, np.array([0, 1, 1, 0])),
        _entry("cal", ALICE, base),
    ]
    found = Findings("har", "HAR", pairs("har", entries, labels, LIMITS), 3, 2, LIMITS, ())
    csv_path, html_path = write([found], tmp_path)
    with csv_path.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == COLUMNS and len(rows) == 4
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    page = html_path.read_text()
    assert "<script>" not in page and "<mark>" in page
    assert hidden(page) == []
    assert all(link.startswith("#") for link in re.findall(r'<a href="([^"]*)"', page))
    assert "never published" in page
    assert "[[pair]]" in page and "content_hashes" in page


def _run_course(tmp_path: Path, tiny: Path) -> dict[str, Path]:
    from support.course import write_course

    return write_course(tmp_path, tiny)


@pytest.mark.slow
def test_grader_run_compares_every_pair_and_the_board_names_them(
    tmp_path: Path, tiny_data_dir: Path
) -> None:
    """ana, ben and cy hand in a ten-line model with three learning rates: alike, but too
    little code to be evidence (min_overlap). dee's very same file as ana's is `identical`; the
    instructor's board names the pair, the published board never does, and once reviewed the
    pair is cleared from it."""
    course = _run_course(tmp_path, tiny_data_dir)
    (course["submissions"] / "dee").mkdir()
    ana = (course["submissions"] / "ana" / "har.py").read_text()
    (course["submissions"] / "dee" / "har.py").write_text(ana)
    common = ["--assignments", course["assignments"], "--data-dir", course["data"]]
    common += ["--cache-dir", course["cache"]]
    ran = invoke("run", course["submissions"], "--out", course["out"], "--workers", "2", *common)
    assert ran.exit_code == 0, ran.output + ran.stderr
    assert "similarity har: 6 pairs compared, 1 to review (1 identical)" in ran.stderr
    with (course["out"] / "similarity.csv").open(newline="") as file:
        rows = {(r["student_a"], r["student_b"]): r for r in csv.DictReader(file)}
    assert rows[("ana", "dee")]["verdict"] == "identical"
    assert float(rows[("ana", "ben")]["code_similarity"]) > 0.9
    assert rows[("ana", "ben")]["verdict"] == "none"
    with (course["out"] / "leaderboard.csv").open(newline="") as file:
        board = {r["student"]: r["similar_to"] for r in csv.DictReader(file)}
    assert "dee (identical)" in board["ana"] and "ana (identical)" in board["dee"]

    published = invoke("leaderboard", "--out", course["out"], "--anonymize", *common[:2])
    assert published.exit_code == 0, published.output + published.stderr
    assert "similar_to" not in (course["out"] / "publish" / "leaderboard.csv").read_text()

    snippet = (course["out"] / "similarity.html").read_text()
    assert "students = [&#34;ana&#34;, &#34;dee&#34;]" in snippet
    digest = next(r["content_hash"] for r in _board(course["out"]) if r["student"] == "ana")
    review = f'[[pair]]\nstudents = ["dee", "ana"]\ncontent_hashes = ["{digest}", "{digest}"]\n'
    (course["assignments"].parent / "reviewed.toml").write_text(review)
    again = invoke("similarity", course["submissions"], "--results", course["out"], *common)
    assert again.exit_code == 0, again.output + again.stderr
    assert "ana and dee" not in again.output
    redrawn = invoke("leaderboard", "--out", course["out"], *common[:2])
    assert redrawn.exit_code == 0
    board = {r["student"]: r["similar_to"] for r in _board(course["out"])}
    assert "dee" not in board["ana"]


def _board(out: Path) -> list[dict[str, str]]:
    with (out / "leaderboard.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def test_similarity_needs_the_results_of_a_run(tmp_path: Path) -> None:
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "har.py").write_text(ALICE)
    said = invoke("similarity", tmp_path / "subs", "--results", tmp_path / "none")
    assert said.exit_code == 1
    assert said.stderr.strip() == (
        f"Error: no results store at {tmp_path / 'none' / 'grades.sqlite'}; run `grader run` first"
    )


def test_an_unwritable_folder_is_one_line(tmp_path: Path, tiny_data_dir: Path) -> None:
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "har.py").write_text(ALICE)
    from grader.store.sqlite import Store

    Store(tmp_path / "results" / "grades.sqlite")
    (tmp_path / "taken").write_text("a file where a folder would go")
    out = tmp_path / "taken" / "similar"
    said = invoke(
        "similarity", tmp_path / "subs", "--results", tmp_path / "results", "--out", out,
        "--data-dir", tiny_data_dir, "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert said.exit_code == 1, said.output + said.stderr
    last = said.stderr.strip().splitlines()[-1]
    assert last == f"Error: cannot write similarity.csv into {out}: Not a directory"


def test_two_untouched_starters_are_identical_and_the_page_says_why(
    tmp_path: Path, base: np.ndarray
) -> None:
    entries = [_entry("ann", STARTER, base, digest="s"), _entry("bea", STARTER, base, digest="s")]
    found = pairs("har", entries, np.zeros(3, dtype=np.int64), LIMITS)
    assert [p.verdict for p in found] == [Verdict.IDENTICAL]
    _, page = write([Findings("har", "HAR", found, 2, 0, LIMITS, ("starter.py",))], tmp_path)
    assert "Both are the starter as given" in page.read_text()


@pytest.mark.parametrize("seed", range(5))
def test_error_consistency_is_scikit_learns_kappa(seed: int) -> None:
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, 2000)
    a = np.where(rng.random(2000) < 0.1, (labels + 1) % 6, labels)
    b = np.where(rng.random(2000) < 0.05, (labels + 1) % 6, a)
    seen = behaviour.compare({0: a}, {0: b}, labels)
    assert seen is not None and seen.error_consistency is not None
    expected = cohen_kappa_score(a != labels, b != labels)
    assert seen.error_consistency == pytest.approx(expected, rel=1e-12, abs=1e-15)
