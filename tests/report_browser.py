"""The workflow's report.html in headless Chromium (the driver of tests/browser.py): open it on its start page,
show a result of its menu, and, as a script, take the screenshots of docs/tables.md::

    .venv/bin/python tests/report_browser.py results/smoke/report.html docs/img

Used by tests/test_workflow.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from browser import Browser, BrowserError


class ReportBrowser(Browser):
    """A :class:`browser.Browser` that knows the menu of a Snakemake report."""

    def open_report(self, report: str | Path) -> str:
        """Open a Snakemake report.html and wait until its app has drawn the start page; return the page text."""
        self.goto(Path(report).resolve().as_uri())
        return self.wait_for(
            "typeof app !== 'undefined' && document.querySelector('#app') && "
            "document.querySelector('#app').innerText.length > 200 && document.body.innerText",
            what="the report's start page",
        )

    def show_result(self, category: str, row: str, button: str = "eye") -> None:
        """Click a category of the report's menu, then, in the row of its results list that has a cell ``row``
        (a label, or the file name where a result has no labels; ``Table 2`` finds ``Table 2: …``), the ``eye``
        button (show the result) or the ``information-circle`` one (its caption)."""
        self.evaluate("app.setView({navbarMode: 'menu'})")
        finder = f"""(() => {{
            const row = [...document.querySelectorAll('nav tr')].find(tr =>
                [...tr.querySelectorAll('td')].some(td => td.innerText.trim() === {json.dumps(row)} ||
                                                          td.innerText.trim().startsWith({json.dumps(row + ":")})));
            const target = row && row.querySelector('a[iconname={json.dumps(button)}]');
            if (!target) return false;
            target.click();
            return true;
        }})()"""
        # the category's menu entry is clicked in the page (element.click()), not with the mouse at coordinates:
        # on a loaded machine the menu can move between locating an entry and the mouse event, and CI saw that
        # mouse click open Figures instead of Tables. If the list still does not show the row, the view is
        # reset to the menu and the entry clicked again.
        opener = f"""(() => {{
            const want = {json.dumps(category)};
            const link = [...document.querySelectorAll('nav a')].find(a => a.innerText.trim() === want);
            if (!link) return false;
            link.click();
            return true;
        }})()"""
        what = f"the {button} button of {row!r} under {category!r}"
        for attempt in range(3):
            self.wait_for(opener, what=f"the menu entry {category!r}")
            try:
                self.wait_for(finder, timeout=15, what=what)
                break
            except BrowserError:
                if attempt == 2:
                    raise
                self.evaluate("app.setView({navbarMode: 'menu', category: undefined, subcategory: undefined})")
        if button == "eye":
            self.wait_for("document.querySelector('iframe, #app img') !== null", what=f"{row!r} shown")


def screenshots(report: str | Path, out: str | Path, width: int = 1200) -> list[Path]:
    """The screenshots of docs/tables.md: the start page (summary), Table 2 shown inline, the claims."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with ReportBrowser(1600, 900) as browser:
        browser.open_report(report)
        time.sleep(1)
        written.append(browser.screenshot(out / "report-summary.png", width=width))
        browser.show_result("Tables", "Table 2")
        browser.wait_for_frame_text("(FP,FP)")
        time.sleep(0.5)
        written.append(browser.screenshot(out / "report-table2.png", width=width))
        browser.show_result("Claims", "Do the paper's claims hold?")
        browser.wait_for_frame_text("checks hold")
        time.sleep(0.5)
        written.append(browser.screenshot(out / "report-claims.png", width=width))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="the workflow's report.html (results/smoke/report.html)")
    parser.add_argument("out", type=Path, help="directory for the PNGs (docs/img)")
    parser.add_argument("--width", type=int, default=1200, help="pixels across of each PNG (default: 1200)")
    args = parser.parse_args()
    for path in screenshots(args.report, args.out, args.width):
        print(path, path.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
