"""The published page and a report in a real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium): they load without console errors, every row shows,
clicking a column header sorts, the pictures render, the page still works with JavaScript off,
and a screenshot is not blank.

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


def rows() -> list[Result]:
    return [
        ok("zoe", 0.97, assignment="har"),
        ok("yan", 0.975, gap=0.03, params=500, assignment="har"),
        ok("vic", 0.962, gap=0.005, params=9000, assignment="har"),
        failed("xia", "invalid", assignment="har", message="<b>check</b> forward_output_shape"),
        failed("uma", "timeout", assignment="har", message="train took longer than 600 s"),
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
        for row in table.find_elements(By.TAG_NAME, "tr")
    ]


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
    assert len(images) == 2
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


def test_a_report_loads_without_console_errors_with_its_pictures(
    driver: WebDriver, tmp_path: Path
) -> None:
    write_report(build_report(replace(detailed(), student="zoe"), HAR), tmp_path)
    assert load(driver, tmp_path / "har.html") == []
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2
    assert all(driver.execute_script("return arguments[0].naturalWidth", i) > 800 for i in images)
    assert drawn_share(driver.get_screenshot_as_png()) > 0.04
