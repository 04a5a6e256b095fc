"""What a user waits for: the README's main command end to end, against its floor.

Runs, interleaved, as fresh processes from a temporary folder:
  floor    python: import swintrace, build Swin-T, load the cat with the weights'
           transform, run one untraced forward (what any tool must at least do);
  command  swintrace run --image cat.jpg --out report.html (the README's main command).
Both take the same weights: the named ones if they are in torch's cache, else
seeded random ones (SWINTRACE_OFFLINE=1 is set, so neither touches the network).
Prints medians, the ratio of the medians, the median of each round's ratio
("paired") and the report's size. Usage: python bench/main_command.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = """
import torch, swintrace
from swintrace.images.prepare import load_image
from swintrace.checkpoints.pretrained import PRETRAINED
model = swintrace.load_model("swin_t", weights="pretrained")
image = load_image("cat.jpg", PRETRAINED["swin_t"].transform)
with torch.no_grad():
    model(image.tensor)
"""


def _timed(command: list[str], folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    beside = Path(sys.executable).with_name("swintrace")  # the venv's command, even when not on PATH
    swintrace_command = str(beside) if beside.exists() else shutil.which("swintrace")
    if swintrace_command is None:
        sys.exit("install swintrace first (pip install .): the bench runs the installed command")
    os.environ["SWINTRACE_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shutil.copy(ROOT / "examples" / "cat.jpg", folder / "cat.jpg")
        contenders = {
            "floor": [sys.executable, "-c", FLOOR],
            "command": [swintrace_command, "run", "--image", "cat.jpg", "--out", "report.html"],
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        _timed(contenders["command"], folder)  # warm-up: file caches, bytecode
        for _ in range(args.repeats):
            for label, command in contenders.items():
                times[label].append(_timed(command, folder))
        size = (folder / "report.html").stat().st_size
    median = {label: statistics.median(values) for label, values in times.items()}
    paired = statistics.median(c / f for c, f in zip(times["command"], times["floor"]))
    print(f"swin_t on the cat, {args.repeats} interleaved repeats, medians:")
    print(f"  floor (import, build, load image, untraced forward)  {median['floor']:6.2f} s")
    print(f"  swintrace run --image cat.jpg --out report.html       {median['command']:6.2f} s")
    print(f"command / floor   median {median['command'] / median['floor']:.3f}   paired {paired:.3f}")
    print(f"report.html       {size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
