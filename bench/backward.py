"""Backward tracing against an untraced forward + backward, measured side by side in one run.

Runs, interleaved, on Swin-T (batch 1, 224x224):
  untraced   model(images), cross-entropy against the top-1, loss.backward(), outside tracing();
  traced     the same inside tracing(backward=True) (slice 3, no statistics), events built;
  stats      inside tracing(backward=True, stats=True): what `swintrace run --backward` records
             (without the pictures' data), events built;
and prints the medians, the ratio of the medians and the median of each round's ratio
("paired"). Gradients are set to None before every run, as trace_image does. Target: traced
<= 1.5x. Then writes the Swin-T --backward report of the cat (seeded random weights: the
same size as with the pretrained ones) and prints its size (target <= 6 MiB). Usage:

    python bench/backward.py [--model swin_t] [--repeats 9] [--no-report]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import swintrace


def _pass(model, images, **options) -> float:
    model.zero_grad(set_to_none=True)
    started = time.perf_counter()
    if options:
        with swintrace.tracing(backward=True, **options) as trace:
            logits = model(images)
            F.cross_entropy(logits, logits.detach().argmax(-1)).backward()
        trace.events  # noqa: B018 - built, as a report reads them
    else:
        logits = model(images)
        F.cross_entropy(logits, logits.detach().argmax(-1)).backward()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="swin_t")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    model = swintrace.load_model(args.model)
    size = model.config.img_size
    images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    contenders = {"untraced": {}, "traced": {"stats": False}, "stats": {"stats": True}}
    for options in contenders.values():  # warm up
        _pass(model, images, **options)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, options in contenders.items():
            times[name].append(_pass(model, images, **options))
    base = statistics.median(times["untraced"])
    print(f"{args.model}, forward + backward, median of {args.repeats}:")
    for name in contenders:
        paired = statistics.median(t / u for t, u in zip(times[name], times["untraced"]))
        print(f"  {name:9s} {statistics.median(times[name]) * 1000:8.1f} ms  "
              f"ratio {statistics.median(times[name]) / base:.3f}  paired {paired:.3f}")
    if not args.no_report:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "report.html"
            subprocess.run([sys.executable, "-m", "swintrace", "-q", "run", "--image", "sample:cat", "--model", args.model,
                            "--weights", "random", "--backward", "--out", str(out)], check=True)
            print(f"  the {args.model} --backward report of the cat: {out.stat().st_size / 2**20:.2f} MiB "
                  "(target <= 6 MiB)")


if __name__ == "__main__":
    main()
