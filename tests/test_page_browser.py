"""The interactive page in a real browser (headless Chromium from Debian's packages, driven by
selenium): it opens collapsed, blocks open and close in place, search reveals, the data
attributes carry summary's exact costs, it works from the keyboard and requests nothing.

One browser session serves the whole module. Without Chromium the tests skip, except in CI
(``CI`` set), where they fail: ``make test`` installs Chromium first (``make browser``).
Screenshots go to ``$INCEPTDSL_SCREENSHOTS`` when set (look at them after a change)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else \
    shutil.which("chromedriver")
PAGES = ("inception_resnet_v2", "inception_v3", "inception_v4", "googlenet", "bn_inception")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests (make browser installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    for name in PAGES:
        assert run_cli("render", name, "-o", str(folder / f"{name}.html")).code == 0
    return {name: folder / f"{name}.html" for name in PAGES}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM or not DRIVER:
        _missing("chromium or chromedriver not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as ChromeService
    except ImportError:
        _missing("selenium not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=ChromeService(executable_path=DRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, pages):
    """Open a page fresh and return helpers bound to it."""

    def open_page(name: str):
        browser.get(pages[name].as_uri())
        return browser

    return open_page


def nodes(driver, selector: str = "[data-path]") -> list[dict]:
    """Every drawn node's data attributes, in document order."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => ({...e.dataset,"
        " expanded: e.getAttribute('aria-expanded')}))", selector)


def click(driver, path: str) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", node(driver, path))
    node(driver, path).click()


def node(driver, path: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-path="{path}"]')


def shot(driver, name: str) -> None:
    folder = os.environ.get("INCEPTDSL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def summary(name: str) -> dict:
    return json.loads(run_cli("summary", name, "--json").out)


def test_irv2_opens_collapsed_and_top_level_costs_add_up_to_summary(page):
    driver = page("inception_resnet_v2")
    drawn = nodes(driver)
    report = summary("inception_resnet_v2")
    assert len(drawn) <= 30
    assert all(n["depth"] == "1" for n in drawn)
    assert sum(int(n["params"]) for n in drawn) == report["params"]
    assert sum(int(n["macs"]) for n in drawn) == report["macs"]
    assert sum(int(n["buffers"]) for n in drawn) == report["buffers"]
    assert {n["path"] for n in drawn} >= {"repeat", "mixed_6a", "repeat_1", "classif"}
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    shot(driver, "irv2_open")


def test_expanding_repeat_then_a_block35_reaches_its_convs_and_closes_again(page):
    driver = page("inception_resnet_v2")
    before = len(nodes(driver))
    repeat = nodes(driver, '[data-path="repeat"]')[0]
    assert repeat["expandable"] == "true" and repeat["expanded"] == "false"
    click(driver, "repeat")
    blocks = nodes(driver, '[data-kind="Block35"]')
    assert [b["path"] for b in blocks] == [f"repeat.{i}" for i in range(10)]
    assert sum(int(b["params"]) for b in blocks) == int(repeat["params"])
    click(driver, "repeat.0")
    convs = [n["path"] for n in nodes(driver, '[data-kind="conv2d"]')]
    assert "repeat.0.conv2d" in convs
    assert "repeat.0.branch1.0" in [n["path"] for n in nodes(driver)]  # branches open too
    shot(driver, "irv2_block35_open")
    click(driver, "repeat.0.branch1.0")
    assert "repeat.0.branch1.0.conv" in [n["path"] for n in nodes(driver, '[data-kind="conv2d"]')]
    driver.find_element("css selector", '[data-path="repeat"] .head').click()
    assert len(nodes(driver)) == before


@pytest.mark.parametrize("query", ["mixed_6a", "MIXED_6A", "Mixed_6A"])
def test_search_in_any_case_reveals_a_block(page, query):
    from selenium.webdriver.common.keys import Keys

    driver = page("inception_resnet_v2")
    box = driver.find_element("css selector", "input[type=search]")
    box.send_keys(query, Keys.ENTER)
    target = node(driver, "mixed_6a")
    assert target.is_displayed() and "hit" in target.get_attribute("class")


def test_search_reveals_a_layer_deep_inside_closed_blocks(page):
    from selenium.webdriver.common.keys import Keys

    driver = page("inception_resnet_v2")
    box = driver.find_element("css selector", "input[type=search]")
    box.send_keys("repeat_1.7.branch1.2.CONV", Keys.ENTER)
    target = node(driver, "repeat_1.7.branch1.2.conv")
    assert target.is_displayed() and target.get_attribute("data-kind") == "conv2d"
    for path in ("repeat_1", "repeat_1.7", "repeat_1.7.branch1.2"):
        assert node(driver, path).get_attribute("aria-expanded") == "true"
    shot(driver, "irv2_search_deep")


def test_a_plain_top_level_sequence_opens_with_the_page(page):
    driver = page("inception_v4")
    drawn = nodes(driver)
    assert len(drawn) <= 30
    assert [n["path"] for n in drawn if n["kind"] == "ReductionA"] == ["features.10"]
    assert nodes(driver, '[data-path="features"]')[0]["expanded"] == "true"
    tops = nodes(driver, '[data-depth="1"]')
    assert sum(int(n["params"]) for n in tops) == summary("inception_v4")["params"]


@pytest.mark.parametrize("name", ["inception_v3", "googlenet", "bn_inception"])
def test_data_attributes_equal_summary_json(page, name):
    driver = page(name)
    report = summary(name)
    drawn = nodes(driver)
    by_path: dict[str, dict] = {}
    for n in drawn:
        by_path.setdefault(n["path"], n)
    for block in report["blocks"]:
        if block["path"] in by_path:  # rows inside a closed repeat are not drawn yet
            n = by_path[block["path"]]
            assert (int(n["params"]), int(n["macs"]), n["kind"]) == (
                block["params"], block["macs"], block["kind"]), block["path"]
    assert sum(int(n["params"]) for n in drawn) == report["params"]
    assert sum(int(n["macs"]) for n in drawn) == report["macs"]
    driver.execute_script("window.inceptdslPage.expandAll()")
    leaves = nodes(driver, "[data-path]:not([data-expandable])")
    assert sum(int(n["params"]) for n in leaves) == report["params"]
    assert sum(int(n["macs"]) for n in leaves) == report["macs"]
    shot(driver, f"{name}_all_open")


def test_keyboard_opens_closes_and_jumps_to_search(page):
    from selenium.webdriver.common.keys import Keys

    driver = page("inception_v3")
    body = driver.find_element("css selector", "body")
    body.send_keys("/")
    active = driver.switch_to.active_element
    assert active.get_attribute("type") == "search"
    target = node(driver, "Mixed_5b")
    driver.execute_script("arguments[0].focus()", target)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    assert node(driver, "Mixed_5b").get_attribute("aria-expanded") == "true"
    assert driver.switch_to.active_element.get_attribute("data-path") == "Mixed_5b"
    details = driver.find_element("id", "details").text
    assert "Mixed_5b" in details and "inception_v3.yaml:" in details
    driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert driver.switch_to.active_element.get_attribute("data-path") == "Mixed_5b.branch1x1"
    driver.switch_to.active_element.send_keys(Keys.ARROW_UP)
    driver.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    assert node(driver, "Mixed_5b").get_attribute("aria-expanded") == "false"
    tabbable = driver.execute_script(
        "return [...document.querySelectorAll('[data-path]')].every(e => e.tabIndex === 0)")
    assert tabbable


def test_colour_toggle_recolours_by_macs(page):
    driver = page("googlenet")

    def fills() -> list[str]:
        return driver.execute_script(
            "return [...document.querySelectorAll('[data-path]')].map(e => e.style.background)")

    by_kind = fills()
    driver.find_element("css selector", "input[name=colour][value=macs]").click()
    by_macs = fills()
    assert by_kind != by_macs and any("hsl" in f or "rgb" in f for f in by_macs)
    shot(driver, "googlenet_by_macs")


def test_first_paint_is_fast(page):
    from selenium.webdriver.support.ui import WebDriverWait

    driver = page("inception_resnet_v2")
    paint = WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "return performance.getEntriesByType('paint').map(e => e.startTime)"))
    assert max(paint) < 5000  # generous; benchmarks/bench_page.py measures it
