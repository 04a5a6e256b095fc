"""What pictures add to a swin_t report: time and size, measured side by side in one run.

For the cat image, interleaved: trace + HTML report without pictures, and with
pictures (capture while tracing + drawing + embedding). Prints medians, the
ratio, and the report sizes. Usage: python bench/pictures.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import swintrace  # noqa: E402
from swintrace.images.prepare import load_image, thumbnail_png  # noqa: E402
from swintrace.pictures import make_pictures  # noqa: E402
from swintrace.render.html import render_html  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = swintrace.load_model("swin_t")
    image = load_image(ROOT / "examples" / "cat.jpg", 224)
    header = {"input": {"description": "cat", "thumbnail_png": thumbnail_png(image.display)}}

    def report(pictures: bool) -> tuple[int, int]:
        with torch.inference_mode(), swintrace.tracing(stats=True, header=header, pictures=pictures) as trace:
            model(image.tensor)
        made = make_pictures(trace) if pictures else None
        page = render_html(trace, "en", made)
        return len(page.encode("utf-8")), sum(len(p.png) for p in made or [])

    times: dict[bool, list[float]] = {False: [], True: []}
    sizes = {}
    report(True)  # warm-up
    for _ in range(args.repeats):
        for pictures in (False, True):
            start = time.perf_counter()
            sizes[pictures] = report(pictures)
            times[pictures].append(time.perf_counter() - start)
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(f"swin_t on the cat, {args.repeats} interleaved repeats, medians:")
    print(f"  report without pictures  {without:6.2f} s  {sizes[False][0] / 2**20:5.2f} MiB")
    print(f"  report with pictures     {with_:6.2f} s  {sizes[True][0] / 2**20:5.2f} MiB "
          f"({sizes[True][1] / 2**20:.2f} MiB of PNG)")
    print(f"with / without            {with_ / without:.3f} time, {sizes[True][0] / sizes[False][0]:.3f} size")


if __name__ == "__main__":
    main()
