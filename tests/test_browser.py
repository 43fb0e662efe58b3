"""The published page and a report in a real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium): they load without console errors, every row shows,
clicking a column header sorts, the pictures render, the page still works with JavaScript off,
and a screenshot is not blank. At a phone's width (400 px) and a wide screen's (1400 px) no
cell reaches past the screen's edge, messages wrap across the page, and each row's figures and
targets show; the screenshots of both are saved (the path is printed) to be looked at.

Only this test starts a browser; the grader itself never does. Chromium is started offline
(no background networking) with a profile of its own.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from support.course import HAR, SPECS
from support.layers import require_sandbox
from support.results import baseline, detailed, failed, ok

from grader.core.results import Result
from grader.core.submission import StudentMeta
from grader.publish.board import build_board, write_board
from grader.publish.reports import build_report, write_report

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
]

if CHROMIUM is None or CHROMEDRIVER is None:
    reason = (
        "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    )
    if require_sandbox():  # CI installs them (.ci/run): absence is a failure there
        pytest.fail(reason + "; .ci/run installs them", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402  (only where a browser exists)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

RANKED = ["yan", "zoe", "vic", "uma", "xia"]  # by test accuracy; failed rows last
WIDTHS = [400, 1400]  # a phone, a wide screen
SHAPE = (
    "<b>check</b> forward_output_shape: build_model(...)(x) returned a tensor of shape "
    "(64, 1, 6) for a batch of shape (64, 561); expected (64, 6): one row of 6 class scores"
)
TIMEOUT = (
    "seed 0: build_model did not return within 600 s (timeout_seconds); the time was spent "
    "building the model, before training started: look for a loop that never ends in "
    "build_model, such as a while loop whose condition never changes, or a recursion"
)  # over 200 characters: folded into <details>


def rows() -> list[Result]:
    seeds = {"seeds": [0, 1, 2], "test_accuracy_std": 0.0027}
    return [
        ok("zoe", 0.97, assignment="har", **seeds),
        ok("yan", 0.975, gap=0.03, params=500, assignment="har", **seeds),
        ok("vic", 0.962, gap=0.005, params=9000, assignment="har", **seeds),
        replace(failed("xia", "invalid", assignment="har", message=SHAPE), seeds=[0]),
        replace(failed("uma", "timeout", assignment="har", message=TIMEOUT), seeds=[0]),
        baseline(),
        ok("wes", 0.98, assignment="mnist"),
    ]


def browser(tmp_path: Path, *, javascript: bool) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver: Selenium never looks one up online.
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("board")
    board = build_board(rows(), SPECS, meta={"yan": StudentMeta(late=True)})
    write_board(board, folder, ["html"])
    return folder / "leaderboard.html"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chrome = browser(tmp_path_factory.mktemp("chromium"), javascript=True)
    try:
        yield chrome
    finally:
        chrome.quit()


def load(driver: WebDriver, path: Path) -> list[dict[str, object]]:
    driver.get(path.as_uri())
    driver.get_log("browser")  # drop what an earlier page left
    driver.refresh()
    return [e for e in driver.get_log("browser") if e.get("level") in ("SEVERE", "WARNING")]


def students_in_order(driver: WebDriver) -> list[str]:
    table = driver.find_element(By.CSS_SELECTOR, "#har table.board tbody.students")
    return [
        row.find_elements(By.TAG_NAME, "td")[1].text
        for row in table.find_elements(By.CSS_SELECTOR, "tr.row")
    ]


def rows_and_notes(driver: WebDriver) -> list[str]:
    """Each row's student, and each message row's first words, top to bottom."""
    script = """
      return Array.from(document.querySelectorAll('#har tbody.students tr')).map(function (tr) {
        return tr.classList.contains('note') ? 'note: ' + tr.textContent.trim().slice(0, 12)
                                             : tr.cells[1].textContent.trim().split(/\\s/)[0];
      });"""
    return list(driver.execute_script(script))


def first_word(texts: list[str]) -> list[str]:
    return [t.split()[0] for t in texts]


def test_the_page_loads_without_console_errors_and_shows_every_row(
    driver: WebDriver, page: Path
) -> None:
    assert load(driver, page) == []
    shown = driver.find_elements(By.CSS_SELECTOR, "tr.row")
    assert len(shown) == len(rows())
    assert all(row.is_displayed() for row in shown)
    assert first_word(students_in_order(driver)) == RANKED
    reference = driver.find_element(By.CSS_SELECTOR, "#har tbody.reference")
    assert "logistic-regression" in reference.text and "not ranked" in reference.text
    assert "<b>check</b>" in driver.find_element(By.CSS_SELECTOR, "#har tbody.students").text
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == 4  # per assignment: the histogram, and accuracy against gap
    assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 300 for i in images)


def test_clicking_a_column_header_sorts_it(driver: WebDriver, page: Path) -> None:
    load(driver, page)

    def click(label: str) -> None:
        headers = driver.find_elements(By.CSS_SELECTOR, "#har table.board thead th")
        (header,) = [h for h in headers if h.text.rstrip(" ▲▼") == label]
        header.find_element(By.TAG_NAME, "button").click()

    click("test accuracy")  # ascending; failed rows (no value) stay last
    assert first_word(students_in_order(driver)) == ["vic", "zoe", "yan", "uma", "xia"]
    click("test accuracy")  # descending
    assert first_word(students_in_order(driver)) == RANKED
    click("parameters")
    assert first_word(students_in_order(driver))[:3] == ["yan", "zoe", "vic"]
    click("student")
    assert first_word(students_in_order(driver)) == ["uma", "vic", "xia", "yan", "zoe"]
    assert rows_and_notes(driver) == [  # each message stays under its row
        "uma", "note: seed 0: buil", "vic", "xia", "note: <b>check</b>", "yan", "zoe"]  # fmt: skip
    sorted_header = driver.find_element(By.CSS_SELECTOR, "#har th[aria-sort]")
    assert (sorted_header.text.rstrip(" ▲▼"), sorted_header.get_attribute("aria-sort")) == (
        "student", "ascending")  # fmt: skip
    # the reference rows stay apart, whatever the order
    assert (
        "logistic-regression" in driver.find_element(By.CSS_SELECTOR, "#har tbody.reference").text
    )


def test_with_javascript_off_every_row_still_shows(tmp_path: Path, page: Path) -> None:
    chrome = browser(tmp_path, javascript=False)
    try:
        assert load(chrome, page) == []
        shown = chrome.find_elements(By.CSS_SELECTOR, "tr.row")
        assert len(shown) == len(rows()) and all(r.is_displayed() for r in shown)
        assert chrome.find_elements(By.CSS_SELECTOR, "th button") == []  # only sorting is lost
        assert first_word(students_in_order(chrome)) == RANKED
    finally:
        chrome.quit()


def drawn_share(png: bytes) -> float:
    """The share of the screenshot's pixels that differ from its background colour."""
    image = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
    background = np.median(image.reshape(-1, 3), axis=0)
    return float((np.abs(image - background).sum(axis=2) > 0.1).mean())


def test_a_screenshot_of_the_page_is_not_blank(driver: WebDriver, page: Path) -> None:
    load(driver, page)
    assert drawn_share(driver.get_screenshot_as_png()) > 0.04
    driver.get("about:blank")  # the same check fails on a blank page
    assert drawn_share(driver.get_screenshot_as_png()) < 0.001


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"screenshots of the page: {folder}")  # shown with pytest -s, to look at
    return folder


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def width(driver: WebDriver, request: pytest.FixtureRequest) -> Iterator[int]:
    """The window this wide (and the viewport, headless), put back for the other tests."""
    driver.set_window_size(request.param, 1000)
    yield request.param
    driver.set_window_size(1280, 1600)


def boxes(driver: WebDriver, selector: str) -> list[dict[str, float]]:
    """The client box of every element shown that matches, with its overflow measured."""
    script = """
      return Array.from(document.querySelectorAll(arguments[0]))
        .filter(function (e) { return e.getClientRects().length > 0; })
        .map(function (e) {
          var r = e.getBoundingClientRect();
          return {left: r.left, right: r.right, width: r.width, height: r.height,
                  hidden: e.scrollWidth - e.clientWidth,
                  line: parseFloat(getComputedStyle(e).lineHeight)};
        });"""
    return list(driver.execute_script(script, selector))


def visible_width(driver: WebDriver) -> int:
    """The viewport's width less its scrollbar."""
    return int(driver.execute_script("return document.documentElement.clientWidth"))


def full_page_png(driver: WebDriver, width: int) -> bytes:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height + 100)
    return driver.get_screenshot_as_png()


def test_at_every_width_no_cell_reaches_past_the_screen(
    driver: WebDriver, page: Path, width: int, screenshots: Path
) -> None:
    load(driver, page)
    assert driver.execute_script("return window.innerWidth") == width
    viewport = visible_width(driver)
    assert driver.execute_script("return document.documentElement.scrollWidth") == viewport
    cells = boxes(driver, "table.board tbody td, table.board tbody th")
    assert len(cells) > 50
    (head,) = boxes(driver, "#har table.board thead")
    if width < 800:  # cards: the header row is there for screen readers only, drawn nowhere
        assert head["width"] <= 1
    else:
        cells += boxes(driver, "table.board thead th")
    assert [c for c in cells if c["left"] < 0 or c["right"] > viewport + 0.5] == []
    png = full_page_png(driver, width)
    (screenshots / f"leaderboard-{width}px.png").write_bytes(png)
    assert drawn_share(png) > 0.04


def test_at_every_width_messages_wrap_across_the_page(
    driver: WebDriver, page: Path, width: int
) -> None:
    load(driver, page)
    viewport = visible_width(driver)
    (shape, timeout) = boxes(driver, "#har td.message")
    for message in (shape, timeout):
        assert message["right"] <= viewport and message["hidden"] <= 0  # nothing cut off
        assert message["width"] >= 0.6 * viewport  # a paragraph, not a strip of words
    lines = shape["height"] / shape["line"]
    assert (lines >= 3) if width == 400 else (lines < 3), lines
    folded = driver.find_element(By.CSS_SELECTOR, "#har td.message details")
    assert folded.find_element(By.TAG_NAME, "summary").is_displayed()
    assert not folded.find_element(By.CSS_SELECTOR, ".full").is_displayed()
    folded.find_element(By.TAG_NAME, "summary").click()  # opens without script, too
    (whole,) = boxes(driver, "#har td.message details .full")
    assert whole["right"] <= viewport and whole["hidden"] <= 0
    assert driver.find_element(By.CSS_SELECTOR, "#har details .full").text == TIMEOUT


def test_at_a_phones_width_each_row_shows_its_figures_and_targets(
    driver: WebDriver, page: Path
) -> None:
    driver.set_window_size(400, 1000)
    try:
        load(driver, page)
        first = driver.find_element(By.CSS_SELECTOR, "#har tbody.students tr.row")
        assert first.value_of_css_property("display") == "grid"  # a card, not a table row
        shown = {
            cell.get_attribute("data-label"): cell.text
            for cell in first.find_elements(By.CSS_SELECTOR, "td[data-label]")
            if cell.is_displayed()
        }
        # each under its label (drawn from data-label)
        assert shown["test accuracy"] == "97.50% ± 0.27"
        assert (shown["target A"], shown["target B"]) == ("A missed", "B missed")
        assert shown["seeds"] == "0, 1, 2"
        assert shown["grading time (this machine) †"].endswith("1.2 s")
        failed_row = driver.find_element(By.CSS_SELECTOR, "#har tr.row[data-status='invalid']")
        # a failed row's card leaves out the figures it does not have
        assert [c.get_attribute("data-label") for c in failed_row.find_elements(
            By.CSS_SELECTOR, "td[data-label]") if c.is_displayed()] == ["seeds"]  # fmt: skip
    finally:
        driver.set_window_size(1280, 1600)
    load(driver, page)  # wide: a table again
    first = driver.find_element(By.CSS_SELECTOR, "#har tbody.students tr.row")
    assert first.value_of_css_property("display") == "table-row"


def test_a_report_loads_without_console_errors_with_its_pictures(
    driver: WebDriver, tmp_path: Path
) -> None:
    write_report(build_report(replace(detailed(), student="zoe"), HAR), tmp_path)
    assert load(driver, tmp_path / "har.html") == []
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2
    assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 800 for i in images)
    assert drawn_share(driver.get_screenshot_as_png()) > 0.04
