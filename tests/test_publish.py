"""The published leaderboard from stored results: one board, four formats (csv, md, html, json),
reference rows set apart, lateness shown, anonymized without a trace of a real id, student
text inert everywhere, and the same store always giving the same bytes."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.course import SPECS
from support.results import baseline, failed, ok

from grader.core.results import Policy, Result
from grader.core.submission import StudentMeta
from grader.publish.anonymize import derived_id, public_names
from grader.publish.board import build_board, render_html, write_board
from grader.publish.export import inert_cell
from grader.publish.render import csp_hash, md_code, md_text

SECRET = b"s" * 32
FORMATS = ["csv", "md", "html", "json"]
HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> | cell [link](http://x) "
    "![img](http://y) **bold** `code` # heading &amp; ${x} \x1b[31mred"
)


def results() -> list[Result]:
    return [
        replace(ok("zoe", 0.97, assignment="har"), finished_at="2024-01-03T10:00:00+00:00"),
        ok("yan", 0.965, gap=0.03, assignment="har"),
        failed("xia", "invalid", assignment="har", message="check forward_output_shape failed"),
        baseline(),
        ok("wes", 0.98, assignment="mnist"),
    ]


def written(tmp_path: Path, board_results: list[Result], **options: Any) -> dict[str, str]:
    board = build_board(board_results, SPECS, **options)
    write_board(board, tmp_path, FORMATS)
    names = {"csv": "leaderboard.csv", "md": "leaderboard.md", "html": "leaderboard.html"}
    texts = {f: (tmp_path / n).read_text() for f, n in names.items()}
    texts["json"] = (tmp_path / "leaderboard.json").read_text()
    return texts


# --- one board, every format ----------------------------------------------------------------


def test_every_format_is_written_from_one_board(tmp_path: Path) -> None:
    board = build_board(results(), SPECS)
    paths = write_board(board, tmp_path, FORMATS)
    assert sorted({p.name for p in paths}) == [
        "leaderboard.csv", "leaderboard.html", "leaderboard.json", "leaderboard.md",
        "leaderboard.png",
    ]  # fmt: skip
    document = json.loads((tmp_path / "leaderboard.json").read_text())
    har = document["assignments"][0]
    assert [(r["rank"], r["student"], r["status"]) for r in har["rows"]] == [
        (1, "zoe", "ok"), (2, "yan", "ok"), (None, "xia", "invalid")]  # fmt: skip
    assert har["rows"][0]["targets"] == {"A": True, "B": False}
    assert [t["name"] for t in har["targets"]] == ["A", "B"]
    assert document["updated"] == "2024-01-03T10:00:00+00:00"  # the newest row, not the clock
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert [r["student"] for r in rows] == ["zoe", "yan", "xia", "logistic-regression", "wes"]


def test_reference_rows_are_set_apart_and_never_ranked(tmp_path: Path) -> None:
    stronger = baseline(test=0.99)  # better than every student: still no rank
    board = build_board([*results()[:3], stronger], SPECS)
    (har,) = [s for s in board.sections() if s.name == "har"]
    assert [r["student"] for r in har.rows] == ["zoe", "yan", "xia"]
    assert [(r["student"], r["rank"], r["kind"]) for r in har.references] == [
        ("logistic-regression", None, "baseline")]  # fmt: skip
    assert [r["rank"] for r in har.rows] == [1, 2, None]
    html = render_html(board)
    students, reference = html.split('<tbody class="reference">')
    assert "logistic-regression" not in students and "zoe" in students
    assert "Reference rows, for comparison (not ranked)" in reference
    assert 'data-kind="baseline"' in reference
    md = written(tmp_path, [*results()[:3], stronger])["md"]
    table, references = md.split("Reference rows, for comparison (not ranked):")
    assert "logistic-regression" not in table
    assert "| | logistic-regression (baseline) | ok | 99.00% |" in references.replace("|  |", "| |")
    document = json.loads((tmp_path / "leaderboard.json").read_text())
    assert [r["student"] for r in document["assignments"][0]["references"]] == [
        "logistic-regression"]  # fmt: skip


def test_late_submissions_are_marked(tmp_path: Path) -> None:
    meta = {"yan": StudentMeta(late=True), "zoe": StudentMeta(late=False)}
    texts = written(tmp_path, results(), meta=meta)
    assert "yan</td>" not in texts["html"]
    assert re.search(r"yan <span class=\"badge late\">late</span>", texts["html"])
    assert texts["html"].count('class="badge late"') == 1
    assert "| yan (late) |" in texts["md"]
    rows = {r["student"]: r["late"] for r in csv.DictReader(texts["csv"].splitlines())}
    assert (rows["yan"], rows["zoe"], rows["xia"]) == ("True", "False", "")
    json_rows = json.loads(texts["json"])["assignments"][0]["rows"]
    assert {r["student"]: r["late"] for r in json_rows} == {"zoe": False, "yan": True, "xia": None}


def test_the_page_states_targets_policy_and_picture(tmp_path: Path) -> None:
    html = written(tmp_path, results(), policy=Policy.BEST)["html"]
    assert "each student&#39;s best graded attempt" in html
    assert "test accuracy &gt; 96% with a train-test gap &lt; 2 points" in html
    # two pictures per assignment: the histogram and accuracy against gap
    assert html.count('<img src="data:image/png;base64,') == 4
    assert '<time datetime="2024-01-03T10:00:00+00:00">' in html


def test_the_page_allows_only_its_own_script_and_style() -> None:
    html = render_html(build_board(results(), SPECS))
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL)
    style = re.search(r"<style>(.*?)</style>", html, re.DOTALL)
    assert script and style
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy is not None
    assert f"script-src {csp_hash(script.group(1))}" in policy.group(1).replace("&#39;", "'")
    assert f"style-src {csp_hash(style.group(1))}" in policy.group(1).replace("&#39;", "'")
    assert html.count("<script") == 1
    assert "http" not in policy.group(1)  # self-contained: nothing is fetched


def test_same_store_same_bytes(tmp_path: Path) -> None:
    first = written(tmp_path / "a", results(), meta={"yan": StudentMeta(late=True)})
    second = written(tmp_path / "b", results(), meta={"yan": StudentMeta(late=True)})
    assert first == second
    assert (tmp_path / "a" / "leaderboard.png").read_bytes() == (
        tmp_path / "b" / "leaderboard.png"
    ).read_bytes()


# --- the summary, seeds and spread, a public board ---------------------------------------------


def seeded(student: str, test: float, std: float, **changes: Any) -> Result:
    return replace(ok(student, test, assignment="har"), seeds=[0, 1, 2], test_accuracy_std=std,
                   **changes)  # fmt: skip


def class_rows() -> list[Result]:
    """Met both, met A only (twice, the same scores), met neither, failed, flagged."""
    return [
        seeded("ann", 0.98, 0.0012),
        seeded("bob", 0.9684, 0.0027),
        seeded("cy", 0.9684, 0.0027),
        seeded("dee", 0.95, 0.0103, gap=0.04),
        replace(failed("eve", "error", assignment="har", message="seed 0: train: boom"), seeds=[0]),
        Result(
            "fay",
            "har",
            "flagged",
            message="integrity audit: agree 71.3%",
            test_accuracy=0.999,
            train_accuracy=0.94,
            gap=-0.059,
            seeds=[0, 1, 2],
        ),
        baseline(),
    ]


def test_each_assignment_is_summarized_as_its_table_shows_it(tmp_path: Path) -> None:
    texts = written(tmp_path, class_rows())
    summary = json.loads(texts["json"])["assignments"][0]["summary"]
    assert summary == {
        "students": 6, "graded": 4, "unranked": {"flagged": 1, "error": 1},
        "held_for_review_not_shown": 0, "met": {"A": 3, "B": 1}, "met_all": 1, "met_none": 1,
        "median_test_accuracy": 0.9684, "best_test_accuracy": 0.98, "seeds": [[0, 1, 2]],
    }  # fmt: skip
    html = texts["html"]
    # the counts agree with the badges in the table (the reference row meets neither)
    students = html.split('<tbody class="reference">')[0]
    assert (students.count("A met</span>"), students.count("B met</span>")) == (3, 1)
    counts = "6 students: 4 ranked; 2 not ranked: 1 flagged for review, 1 error."
    assert counts in html and counts in texts["md"]
    for what, how_many in [
        ("met target A", "3 of 4 ranked"), ("met target B", "1 of 4 ranked"),
        ("met both A and B", "1 of 4 ranked"), ("met neither", "1 of 4 ranked"),
        ("median test accuracy", "96.84%"), ("best test accuracy", "98.00%"),
    ]:  # fmt: skip
        assert f"<dt>{what}</dt><dd>{how_many}</dd>" in html
        assert f"| {what} | {how_many} |" in texts["md"]
    assert "graded on seeds 0, 1 and 2" in html and "graded on seeds 0, 1 and 2" in texts["md"]


def test_a_summary_with_no_ranked_row_states_only_its_counts(tmp_path: Path) -> None:
    board = build_board([failed("eve", "timeout", assignment="har")], SPECS)
    (section,) = board.sections()
    assert section.summary.counts == "1 student: 0 ranked; 1 not ranked: 1 timeout."
    assert section.summary.facts == [] and section.summary.seeds_line == ""


def test_rows_graded_on_different_seeds_say_so() -> None:
    rows = [seeded("ann", 0.98, 0.001), replace(ok("bob", 0.97, assignment="har"), seeds=[0])]
    (section,) = build_board(rows, SPECS).sections()
    assert section.summary.seeds == ((0,), (0, 1, 2))
    assert "different seeds (see the seeds column)" in section.summary.seeds_line


def test_every_row_shows_its_seeds_and_spread(tmp_path: Path) -> None:
    texts = written(tmp_path, class_rows())
    html, md = texts["html"], texts["md"]
    assert '96.84% <span class="spread">± 0.27</span>' in html
    assert "| 96.84% ± 0.27 | 97.84% |" in md
    assert '<td class="num" data-label="seeds">0, 1, 2</td>' in html
    assert '<td class="num" data-label="seeds">0</td>' in html  # the failed row: seed 0 only
    assert "| 0, 1, 2 |" in md
    rows = {r["student"]: r for r in json.loads(texts["json"])["assignments"][0]["rows"]}
    assert (rows["bob"]["seeds"], rows["bob"]["test_accuracy_std"]) == ([0, 1, 2], 0.0027)
    assert (rows["eve"]["seeds"], rows["eve"]["test_accuracy_std"]) == ([0], None)
    # one seed: no spread to show
    single = written(tmp_path / "one", [ok("ann", 0.97, assignment="har")])
    table = single["html"].split('<tbody class="students">')[1].split("</tbody>")[0]
    assert "±" not in table and "| 97.00% |" in single["md"]


def test_grading_time_is_the_graders_record_set_apart(tmp_path: Path) -> None:
    texts = written(tmp_path, class_rows())
    html, md = texts["html"], texts["md"]
    headers = re.findall(r"<th scope=\"col\"[^>]*>([^<]*)</th>", html)
    assert headers[-1] == "grading time (this machine) †" and ">training time<" not in html
    assert '<th scope="col" class="num record" data-type="number">grading time' in html
    note = "† Grading time: the training time summed over the row&#39;s seeds, as the grading"
    assert note in html and "not the submission&#39;s merit" in html
    assert md.count("| grading time (this machine) † |") == 2  # students' and references' tables
    assert "† Grading time: the training time summed over the row's seeds" in md
    notes = json.loads(texts["json"])["notes"]
    assert "not the submission's merit" in notes["train_seconds"]


def test_a_long_message_folds_into_details(tmp_path: Path) -> None:
    message = "seed 0: train: " + "word " * 80 + "(line 44 of the submission)"
    html = written(tmp_path, [failed("eve", "error", assignment="har", message=message)])["html"]
    (cell,) = re.findall(r'<td class="message"[^>]*>(.*?)</td>', html, re.DOTALL)
    assert cell.startswith('<div class="text"><details><summary>seed 0: train: word word')
    assert cell.count("(line 44 of the submission)") == 1  # in the whole text, not the summary
    assert '</summary><div class="full">' + message + "</div></details>" in cell
    hostile = written(tmp_path / "hostile", [failed("eve", assignment="har", message=HOSTILE * 2)])
    (cell,) = re.findall(r'<td class="message"[^>]*>(.*?)</td>', hostile["html"], re.DOTALL)
    summary = cell.split("</summary>")[0]
    assert "<script>" not in cell and "<img" not in cell and "\x1b" not in cell
    assert summary.startswith('<div class="text"><details><summary>&lt;script&gt;alert(1)')


def test_a_public_board_shows_no_message_and_no_flagged_row(tmp_path: Path) -> None:
    texts = written(tmp_path, class_rows(), public=True)
    for name, text in texts.items():
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # not words
        assert "fay" not in text and "71.3" not in text and "boom" not in text, name
    summary = json.loads(texts["json"])["assignments"][0]["summary"]
    assert (summary["students"], summary["graded"], summary["unranked"]) == (6, 4, {"error": 1})
    assert summary["held_for_review_not_shown"] == 1
    shown = "6 students: 4 ranked; 1 not ranked: 1 error; 1 flagged (held for review) not shown"
    assert shown in texts["html"] and shown in texts["md"]
    assert "students' messages are not shown" in texts["html"]
    assert json.loads(texts["json"])["public"] is True
    assert '<tr class="note"' not in texts["html"]
    plain = written(tmp_path / "plain", class_rows())
    assert "fay" in plain["html"] and "boom" in plain["md"]  # the same rows, not public


# --- the pictures ---------------------------------------------------------------------------------


def drawn_figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure drawn from now on, as it is turned into PNG bytes."""
    import grader.publish.plot

    figures: list[Any] = []
    original = grader.publish.plot.png_bytes

    def spy(figure: Any, *args: Any, **kwargs: Any) -> bytes:
        figures.append(figure)
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(grader.publish.plot, "png_bytes", spy)
    return figures


def label_boxes(axis: Any) -> dict[str, Any]:
    renderer = axis.figure.canvas.get_renderer()
    return {t.get_text(): t.get_window_extent(renderer) for t in axis.texts}


def crowd() -> list[Result]:
    """Identical scores, near neighbours, and a baseline next to them."""
    same = [ok(s, 0.9609, gap=0.0312, assignment="har") for s in ("bruno", "chen")]
    trio = [ok(s, 0.9581, gap=0.0409, assignment="har") for s in ("farah", "gus", "hana")]
    near = [ok("ivy", 0.9612, gap=0.033, assignment="har"), baseline(test=0.9613)]
    return [*same, *trio, *near, ok("alice", 0.9684, gap=0.0175, assignment="har")]


def test_plot_labels_group_identical_points_and_never_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = drawn_figures(monkeypatch)
    write_board(build_board(crowd(), SPECS), tmp_path, ["html"])
    scatter = figures[0].axes[0]  # per section: accuracy against gap, then the histogram
    boxes = label_boxes(scatter)
    assert sorted(boxes) == sorted(
        ["bruno, chen", "farah, gus, hana", "ivy", "alice", "logistic-regression"]
    )
    names = list(boxes)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not boxes[first].overlaps(boxes[second]), (first, second)
    frame = scatter.get_window_extent(scatter.figure.canvas.get_renderer())
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 for b in boxes.values())


def test_labels_that_cannot_be_placed_are_counted_not_stacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = drawn_figures(monkeypatch)
    packed = [ok(f"s{i:02}", 0.96 + i * 0.0001, gap=0.02, assignment="har") for i in range(40)]
    write_board(build_board(packed, SPECS), tmp_path, ["html"])
    scatter = figures[0].axes[0]
    boxes = list(label_boxes(scatter).values())
    assert 0 < len(boxes) < 40
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    left_off = 40 - len(boxes)
    assert f"{left_off} labels left off where they would cover another" in scatter.get_xlabel()


def test_the_histogram_draws_the_targets_and_the_summarys_median(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = drawn_figures(monkeypatch)
    board = build_board(class_rows(), SPECS)
    write_board(board, tmp_path, ["html"])
    histogram = figures[1].axes[0]
    legend = [t.get_text() for t in histogram.get_legend().get_texts()]
    assert legend == [
        "target A: test accuracy > 96% with a train-test gap < 2 points",
        "target B: test accuracy > 97.5%",
        "median 96.84%",  # as the summary says it
    ]
    (section,) = board.sections()
    assert ("median test accuracy", "96.84%") in section.summary.facts
    heights = [patch.get_height() for patch in histogram.patches]
    assert sum(heights) == section.summary.graded == 4
    assert histogram.get_title().endswith("test accuracy of 4 ranked students")


def test_a_score_equal_to_a_threshold_is_drawn_below_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = drawn_figures(monkeypatch)
    rows = [ok("ann", 0.975, assignment="har"), ok("bob", 0.9612, assignment="har")]
    write_board(build_board(rows, SPECS), tmp_path, ["html"])
    histogram = figures[1].axes[0]
    bars = [(p.get_x(), p.get_x() + p.get_width()) for p in histogram.patches if p.get_height()]
    assert [(round(a, 6), round(b, 6)) for a, b in bars] == [(96.1, 96.2), (97.4, 97.5)]
    assert histogram.get_xlim()[1] > 97.5  # room right of the best score


def test_the_markdown_picture_has_a_histogram_under_each_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = drawn_figures(monkeypatch)
    write_board(build_board([*class_rows(), ok("wes", 0.98)], SPECS), tmp_path, ["md"])
    (figure,) = figures
    titles = [axis.get_title() for axis in figure.axes]
    assert [t.split(":")[1].strip() for t in titles] == [
        "4 ranked, 2 not ranked", "1 ranked, 0 not ranked",
        "test accuracy of 4 ranked students", "test accuracy of 1 ranked student",
    ]  # fmt: skip


# --- anonymized boards ------------------------------------------------------------------------

REAL = ["zoe", "yan", "xia", "wes"]


def test_anonymized_files_hold_no_real_id_anywhere(tmp_path: Path) -> None:
    hostile = failed(
        "xia", "invalid", assignment="har", message="duplicate student id: folders XIA, xia"
    )
    texts = written(tmp_path, [*results()[:2], hostile, *results()[3:]], secret=SECRET)
    for name, text in texts.items():
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)  # pictures: below
        for student in REAL:
            assert not re.search(student, text, re.IGNORECASE), (name, student)
    assert "logistic-regression" in texts["html"]  # reference rows keep their names
    assert derived_id("zoe", SECRET) in texts["html"]
    png = (tmp_path / "leaderboard-anonymized.png").read_bytes()
    assert not (tmp_path / "leaderboard.png").exists()  # a run's picture is another file
    plain = written(tmp_path / "plain", results())
    assert png != (tmp_path / "plain" / "leaderboard.png").read_bytes()  # labels changed
    assert "zoe" in plain["html"]


def test_pseudonyms_are_used_when_safe(tmp_path: Path) -> None:
    meta = {
        "zoe": StudentMeta(pseudonym="Night Owl"),
        "yan": StudentMeta(pseudonym="WES"),  # another student's real id: not used
        "xia": StudentMeta(pseudonym="Twin"),
        "wes": StudentMeta(pseudonym="twin"),  # chosen twice: neither gets it
    }
    names = public_names(REAL, meta, SECRET)
    assert names["zoe"] == "Night Owl"
    assert names["yan"] == derived_id("yan", SECRET)
    assert names["xia"] == derived_id("xia", SECRET) and names["wes"] == derived_id("wes", SECRET)
    html = written(tmp_path, results(), meta=meta, secret=SECRET)["html"]
    assert ">Night Owl" in html


def test_derived_ids_are_stable_and_depend_on_the_secret() -> None:
    first = derived_id("zoe", SECRET)
    assert first == derived_id("zoe", SECRET)
    assert re.fullmatch(r"anon-[a-z2-7]{10}", first)
    assert derived_id("zoe", b"t" * 32) != first
    assert len({derived_id(f"s{i}", SECRET) for i in range(1000)}) == 1000


# --- student text stays inert --------------------------------------------------------------------


def test_hostile_text_is_inert_in_every_format(tmp_path: Path) -> None:
    meta = {"xia": StudentMeta(pseudonym="=cmd|' /C calc'!A0", late=True)}
    rows = [*results()[:2], failed("xia", "error", assignment="har", message=HOSTILE)]
    texts = written(tmp_path, rows, meta=meta)
    html = texts["html"]
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\x1b" not in html
    md = texts["md"]
    (line,) = [row for row in md.splitlines() if row.startswith("|  | xia")]
    header = next(row for row in md.splitlines() if row.startswith("| # |"))
    assert len(re.findall(r"(?<!\\)\|", line)) == len(re.findall(r"\|", header))  # no new cell
    assert "<script>" not in md
    assert re.findall(r"(?<!\\)\]\(", md) == ["]("]  # the board's own picture only
    assert "\\[link\\](http\\:/\\/x)" in md
    assert "\\*\\*bold\\*\\*" in md and "\\`code\\`" in md
    cells = [c for r in csv.reader(texts["csv"].splitlines()) for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    rows_json = json.loads(texts["json"])["assignments"][0]["rows"]
    assert rows_json[2]["message"] == HOSTILE.replace("\x1b", "?")  # as data, shown as elsewhere
    anonymized = written(tmp_path / "anon", rows, meta=meta, secret=SECRET)
    cells = [c for r in csv.reader(anonymized["csv"].splitlines()) for c in r]
    assert "'=cmd|' /C calc'!A0" in cells  # the pseudonym, shown as text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'?=1"),  # and a control character shows as "?"
        ("red \x1b[31m", "red ?[31m"),
        ("a=1", "a=1"),
        (-1.5, -1.5),
        (None, None),
    ],
)
def test_csv_cells_never_start_a_formula(value: object, expected: object) -> None:
    assert inert_cell(value) == expected


def test_negative_numbers_stay_numbers_in_the_csv(tmp_path: Path) -> None:
    texts = written(tmp_path, [ok("ann", 0.97, gap=-0.01, assignment="har")])
    (row,) = list(csv.DictReader(texts["csv"].splitlines()))
    assert row["gap"] == "-0.01"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a|b", "a\\|b"),
        ("[x](y)", "\\[x\\](y)"),
        ("<b>&", "&lt;b&gt;&amp;"),
        ("line\nbreak", "line break"),
        ("*_`#~$\\", "\\*\\_\\`\\#\\~\\$\\\\"),
        (None, ""),
        (0.5, "0.5"),
    ],
)
def test_markdown_text_is_escaped(text: object, expected: str) -> None:
    assert md_text(text) == expected


def test_a_code_block_cannot_be_closed_from_inside() -> None:
    block = md_code("a\n```\nb ````` c\x07")
    fence = "``````"
    assert block.startswith(fence + "text\n") and block.endswith("\n" + fence)
    assert "\x07" not in block


def test_failed_rows_show_their_status_and_their_message_in_a_row_of_its_own(
    tmp_path: Path,
) -> None:
    html = written(tmp_path, results())["html"]
    row = re.search(
        r'<tr class="row failed noted" data-kind="student" data-status="invalid">.*?</tr>\s*'
        r'<tr class="note" data-kind="student">.*?</tr>',
        html,
        re.DOTALL,
    )
    assert row is not None
    assert '<span class="badge failed">invalid</span>' in row.group(0)
    # as wide as the table less the rank column: 9 columns and the two targets
    message = '<td class="message" colspan="11"><div class="text">check forward_output_shape failed'
    assert message + "</div></td>" in row.group(0)


def test_an_empty_board_still_draws(tmp_path: Path) -> None:
    from grader.publish.board import write_leaderboard

    write_leaderboard([], SPECS, tmp_path)
    assert (tmp_path / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "leaderboard.csv").read_text().startswith("rank,student,")


def test_the_command_line_knows_every_format() -> None:
    from grader.cli import options
    from grader.publish import board

    assert tuple(board.FORMATS) == options.FORMATS


# --- the terminal ---------------------------------------------------------------------------------


def test_a_log_gets_one_line_per_finished_submission() -> None:
    import io

    from grader.publish.progress import RunProgress, summary

    stream = io.StringIO()
    progress = RunProgress(stream, bar=False)
    progress(replace(ok("ann", 0.9712, assignment="har"), train_seconds=3.21), 1, 12)
    progress(failed("bob", "error", assignment="har", message="x\x1b[2J" + "y" * 200), 2, 12)
    first, second = stream.getvalue().splitlines()
    assert first == (
        "[ 1/12] ann/har: ok, test 97.12%, gap +1.00 points, targets met: A, trained in 3.2 s"
    )
    assert second.startswith("[ 2/12] bob/har: error: x?[2Jyyy") and len(second) < 120
    assert summary(["ok", "ok", "error", "invalid", "error"], 3, 2) == (
        "5 rows: 2 ok, 3 failed (2 error, 1 invalid); 3 graded now, 2 reused"
    )


def test_a_terminal_gets_a_bar() -> None:
    import io

    from grader.publish.progress import RunProgress

    stream = io.StringIO()
    progress = RunProgress(stream, bar=True)
    for done in (1, 2):
        progress(ok(f"s{done}", 0.97, assignment="har"), done, 2)
    text = stream.getvalue()
    assert "grading" in text and "2/2" in text and "[2/2]" not in text


def test_the_terminal_table_shows_student_text_without_escapes() -> None:
    from grader.publish.ranking import ranked
    from grader.publish.table import table_text

    row = Result(student="a\x1b[2Jb", assignment="har", status="invalid", message="m\x07\nn")
    text = table_text(ranked([row]))
    assert "\x1b" not in text and "\x07" not in text
    assert "a?[2Jb" in text and "m? n" in text
