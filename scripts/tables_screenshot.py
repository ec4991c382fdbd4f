"""The picture of ``formscan tables`` in docs/tables.md: a scan's HTML output, screenshotted in headless Chromium.

    .venv/bin/python scripts/tables_screenshot.py ../shared/realdata/tabledetect_teacher_eval_form.jpg \
        -o docs/tables-html.png

Runs ``formscan tables SCAN --format html`` into a temporary folder and photographs the page
with Debian's ``chromium`` through Playwright (no browser download). Only formscan's output is
in the picture: the scan stays where it is.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scan", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/tables-html.png"))
    parser.add_argument("--width", type=int, default=1000, help="viewport width, CSS pixels")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        page_file = Path(folder) / "tables.html"
        subprocess.run([sys.executable, "-m", "formscan", "tables", str(args.scan), "-o", str(page_file), "-q"],
                       check=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": args.width, "height": 600})
                page.goto(page_file.as_uri())
                page.screenshot(path=str(args.output), full_page=True)
            finally:
                browser.close()
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
