"""The HTML report as a reader gets it: its size and how soon headless Chromium paints it.

Writes the README's main command's report (the cat on Swin-T, with the weights
that can be had here), then opens it N times in headless Chromium (the system's
chromium, via Playwright) and prints the file's size with its pictures' share,
and the medians of first paint, first contentful paint and the load event,
against the targets (≤ 5 MiB with the window explorer's data, #18; ≤ 6 MiB for a Swin V2, whose
64-token windows hold more attention; first paint ≤ 0.5 s).
Usage: python bench/page.py [--repeats 7] [--width 1400] [--model swin_v2_t]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
PAINT = """() => {
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  const navigation = performance.getEntriesByType('navigation')[0];
  return [paint['first-paint'], paint['first-contentful-paint'], navigation.loadEventEnd];
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--model", default="swin_t", help="the variant traced (swin_v2_t: the Swin V2 cat report)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.html"
        subprocess.run([sys.executable, "-m", "swintrace", "run", "--image", str(ROOT / "examples" / "cat.jpg"),
                        "--model", args.model, "--out", str(report), "-q"], check=True)
        page_text = report.read_text("utf-8")
        size = report.stat().st_size
        pictures = sum(len(data) for data in re.findall(r'src="data:image/\w+;base64,([^"]+)"', page_text))
        explorer = sum(len(data) for data in re.findall(r'<script type="application/json" class="explorer-data">(.*?)</script>',
                                                         page_text, flags=re.S))
        timings = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            for _ in range(args.repeats):
                page = browser.new_page(viewport={"width": args.width, "height": 900})
                page.goto(report.as_uri(), wait_until="load")
                page.wait_for_timeout(100)
                timings.append(page.evaluate(PAINT))
                page.close()
            browser.close()
    first_paint, contentful, load = (statistics.median(values) for values in zip(*timings))
    print(f"report: {size / 2**20:.2f} MiB ({size:,} bytes; pictures {pictures / 2**20:.2f} MiB, "
          f"window explorer's data {explorer / 2**20:.2f} MiB)   target <= {6 if 'v2' in args.model else 5} MiB")
    print(f"first paint {first_paint:.0f} ms · first contentful paint {contentful:.0f} ms · load {load:.0f} ms "
          f"(median of {args.repeats}, {args.width} px)   target first paint <= 500 ms")


if __name__ == "__main__":
    main()
