"""Peak memory of a traced forward against an untraced one, each in a fresh process.

For a large variant (default swin_l_384, batch 4, random weights, 2 threads)
it runs, each in its own process: the untraced forward, the traced one with
default options, and the traced one with statistics (what reports record),
and prints each process's peak resident memory and the ratios to the
untraced one. Usage: python bench/memory.py [--model swin_l_384] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

RUN = """
import json, resource, sys, torch, swintrace
variant, batch, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(2)
model = swintrace.load_model(variant, weights="random")
size = model.config.img_size
images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    if mode == "untraced":
        model(images)
    else:
        with swintrace.tracing(stats=mode == "stats") as trace:
            model(images)
        len(trace.events)
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="swin_l_384")
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    peaks = {}
    for mode in ("untraced", "traced", "stats"):
        result = subprocess.run([sys.executable, "-c", RUN, args.model, str(args.batch), mode],
                                capture_output=True, text=True, check=True)
        peaks[mode] = json.loads(result.stdout.strip().splitlines()[-1])["peak_kib"] * 1024
    print(f"model {args.model}, batch {args.batch}, peak resident memory of a fresh process:")
    for mode, peak in peaks.items():
        print(f"  {mode:9s} {peak / 2**30:6.2f} GiB   {peak / peaks['untraced']:.3f}x untraced")


if __name__ == "__main__":
    main()
