"""Tracing overhead, measured side by side in one run.

Runs, interleaved, forward passes of
  plain     an uninstrumented Swin V1 written from the official code (tests/reference),
  untraced  the instrumented swintrace model outside tracing(),
  traced    the same inside tracing() with default options (slice 3, no statistics),
  stats     inside tracing(stats=True) (what reports record: min/max/mean/std too),
and prints medians and the ratios: of the medians, "paired" (the median of
each round's ratio, which a slow drift of the machine's load does not move)
and, since a shared machine's noise only ever slows a run down, of the
fastest runs.
Events are built from the forward's records the first time they are read;
that time is measured on its own (after each timed run) and printed, with the
ratio it gives when added to the traced forward. A traced run is timed from entering
tracing() to leaving it (flush and footer included); the trace is kept until
after the timer stops, as a user keeps it, and the time to free it is printed
on its own line. Usage:

    python bench/overhead.py [--model swin_t] [--repeats 15] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from reference.official_swin import official_from_config  # noqa: E402

import swintrace  # noqa: E402
from swintrace.checkpoints.weights import load_state_dict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="swin_t")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = swintrace.load_model(args.model)
    plain = official_from_config(model.config).eval()
    load_state_dict(model, plain.state_dict(), "reference")
    size = model.config.img_size
    images = torch.randn(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))

    kept: list[object] = []  # the last trace, freed outside the timed region

    def traced(**options: object) -> Callable[[], object]:
        def run() -> object:
            with swintrace.tracing(**options) as trace:
                output = model(images)
            kept.append(trace)
            return output

        return run

    contenders: dict[str, Callable[[], object]] = {
        "plain": lambda: plain(images),
        "untraced": lambda: model(images),
        "traced": traced(),
        "stats": traced(stats=True),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    freeing: list[float] = []
    reading: list[float] = []
    with torch.inference_mode():
        for run in contenders.values():  # warm-up
            run()
        kept.clear()
        for _ in range(args.repeats):
            for name, run in contenders.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
                if kept:
                    start = time.perf_counter()
                    len(kept[-1].events)  # built on first read
                    if name == "traced":
                        reading.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    kept.clear()  # the trace's events are freed here, not in the timed forward
                    freeing.append(time.perf_counter() - start)

    median = {name: statistics.median(values) for name, values in times.items()}
    best = {name: min(values) for name, values in times.items()}
    print(f"model {args.model}, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"{args.repeats} interleaved repeats")
    for name in times:
        print(f"  {name:9s} median {median[name] * 1000:8.1f} ms   fastest {best[name] * 1000:8.1f} ms")
    for label, numerator, denominator, note in (
        ("untraced / plain", "untraced", "plain", ""),
        ("traced / untraced", "traced", "untraced", "  (default: slice 3, no statistics)"),
        ("stats / untraced", "stats", "untraced", "  (slice 3, min/max/mean/std)"),
    ):
        paired = statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))
        print(f"{label:22s}  median {median[numerator] / median[denominator]:.3f}   "
              f"paired {paired:.3f}   fastest {best[numerator] / best[denominator]:.3f}{note}")
    first_read = statistics.median(reading)
    print(f"first read of events    {first_read * 1000:8.1f} ms  (builds them; traced + first read / untraced "
          f"median {(median['traced'] + first_read) / median['untraced']:.3f})")
    print(f"freeing a trace         {statistics.median(freeing) * 1000:8.1f} ms  (when the user drops it; not in the ratios)")


if __name__ == "__main__":
    main()
