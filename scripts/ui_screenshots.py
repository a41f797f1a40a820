"""Screenshots of the MLflow UI that `mebqat track ui` serves, for docs/tracking.md (docs/img/mlflow-*.png).

    python scripts/ui_screenshots.py --uri sqlite:///results/smoke/mlflow.db docs/img

serves the store (a copy is not needed: the UI only reads), opens it in headless Chromium (tests/browser.py)
by clicking as a user would, and writes three small PNGs:
the runs table of table2, a run's page with its curves, and table3's `tables` run with the claims'
verdicts. The store needs table2 jobs and a `tables` run (`make smoke` gives both).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import Browser  # noqa: E402
from mlflow_server import track_ui  # noqa: E402

WIDTH, HEIGHT, SHOWN_WIDTH = 1600, 1000, 1100


def take(base: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with Browser(WIDTH, HEIGHT) as browser:
        browser.goto(base + "/")
        browser.click_text("Experiments")
        browser.click_text("table2")
        browser.wait_for_text("test/acc_FP", 60)
        time.sleep(2)
        shots.append(browser.screenshot(out / "mlflow-runs-table.png", clip=(0, 0, WIDTH, 720), width=SHOWN_WIDTH))
        browser.click_text(" · mebqat · seed0", exact=False, within="a[href*='/runs/']")
        browser.wait_for_text("Model metrics", 60)
        browser.click_text("Model metrics")
        browser.wait_for_text("curves", 60)
        time.sleep(3)
        shots.append(browser.screenshot(out / "mlflow-run-curves.png", clip=(0, 0, WIDTH, 1000), width=SHOWN_WIDTH))
        browser.click_text("table2", within="[class*=breadcrumb]")
        browser.wait_for_text("test/acc_FP", 60)
        browser.click_text("Experiments")
        browser.click_text("table3")
        browser.wait_for_text("tables · ", 60)  # the tables run: "tables · <scale>-<fidelity>"
        browser.click_text("tables · ", exact=False, within="a[href*='/runs/']")
        browser.wait_for_text("Claims checked", 60)
        time.sleep(2)
        shots.append(browser.screenshot(out / "mlflow-tables-run.png", clip=(0, 0, WIDTH, 1000), width=SHOWN_WIDTH))
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True, help="the store, e.g. sqlite:///results/smoke/mlflow.db")
    parser.add_argument("out", type=Path, help="directory for the PNGs (docs/img)")
    args = parser.parse_args()
    with track_ui(args.uri) as (base, _links):
        for path in take(base, args.out):
            print(f"{path}: {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
