"""The interactive page: its size, and its first paint in headless Chromium.

For every shipped spec, ``inceptdsl render NAME -o NAME.html`` (in process, timed), the
page's size, and the median ``first-contentful-paint`` (the browser's Performance API)
over several fresh loads of the page in headless Chromium driven by selenium, and the
time the page's script takes to lay out every node open ("Open all").

Usage: ``python benchmarks/bench_page.py [--repeats N] [--write docs/benchmarks.md]``
(needs ``chromium`` and ``chromedriver``: ``make browser``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, median, write_section  # noqa: E402

from inceptdsl.diagram import gallery_specs  # noqa: E402
from inceptdsl.loader import load  # noqa: E402
from inceptdsl.page import write_page  # noqa: E402

PAINT = "return performance.getEntriesByType('paint').map(e => [e.name, e.startTime])"
OPEN_ALL = ("const t = performance.now(); window.inceptdslPage.expandAll();"
            "return [performance.now() - t, document.querySelectorAll('[data-path]').length]")


def chromium():
    """A headless Chromium session (selenium, Debian's chromium and chromedriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=ChromeService(executable_path=driver), options=options)


def first_paint_ms(driver, page: Path) -> float:
    """``first-contentful-paint`` of one fresh load, in ms from navigation start."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(page.as_uri())
    entries = WebDriverWait(driver, 30).until(lambda d: d.execute_script(PAINT))
    return dict(entries).get("first-contentful-paint", max(t for _, t in entries))


def measure(names: list[str], repeats: int, folder: Path) -> list[tuple]:
    driver = chromium()
    rows = []
    try:
        for name in names:
            page = folder / f"{name}.html"
            start = time.perf_counter()
            write_page(load(name), page)
            render_ms = (time.perf_counter() - start) * 1000
            paints = [first_paint_ms(driver, page) for _ in range(repeats)]
            open_ms, drawn = driver.execute_script(OPEN_ALL)
            rows.append((name, page.stat().st_size, render_ms, median(paints), max(paints),
                         open_ms, drawn))
    finally:
        driver.quit()
    return rows


def report(rows: list[tuple], repeats: int) -> str:
    lines = ["## Interactive page (`benchmarks/bench_page.py`)", "",
             f"Machine: {machine()}; headless Chromium via selenium, {repeats} fresh loads "
             "per page (first-contentful-paint from the Performance API, median and worst).",
             "", "| spec | page size | render (in process) | first paint, median | worst "
             "| open all: layout + draw | nodes |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, size, render_ms, paint, worst, open_ms, drawn in rows:
        lines.append(f"| {name} | {size / 1024:.0f} KiB | {render_ms:.0f} ms | {paint:.0f} ms "
                     f"| {worst:.0f} ms | {open_ms:.0f} ms | {drawn} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", metavar="FILE", help="replace this section of FILE")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(gallery_specs(), args.repeats, Path(tmp))
    text = report(rows, args.repeats)
    print(text)
    if args.write:
        write_section(args.write, "bench_page", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
