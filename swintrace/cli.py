"""The ``swintrace`` command line.

Every mistake a user can make ends as one line on stderr and exit code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from . import __version__
from .config import VARIANTS
from .errors import UserError

log = logging.getLogger("swintrace")

EXIT_USER_ERROR = 2
EXAMPLES = """examples:
  swintrace run --input zeros --out trace.jsonl
  swintrace run --input random --model swin_teach --seed 1 --out teach.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swintrace",
        description="Trace one real forward pass of a Swin Transformer, step by step.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"swintrace {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run",
        help="trace one forward pass and write the trace",
        description="Trace one forward pass of a Swin Transformer and write its event log.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--input", choices=("zeros", "random"), default="zeros",
        help="synthetic input image (default: zeros, like the reference walkthrough)",
    )
    run.add_argument("--model", default="swin_t", choices=tuple(VARIANTS), help="model variant")
    run.add_argument("--weights", help="checkpoint file (default: seeded random weights)")
    run.add_argument("--seed", type=int, default=0, help="seed for random weights, input and drop-path")
    run.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"),
        help="where the model runs (auto: cuda when available)",
    )
    run.add_argument("--batch", type=int, default=1, help="batch size of the synthetic input")
    run.add_argument("--train", action="store_true", help="trace in training mode (seeded drop-path)")
    run.add_argument("--slice", type=int, default=3, help="keep t[:N, :N, ...] of every tensor")
    run.add_argument("--out", required=True, help="output file: trace.jsonl")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)
    return parser


def _run(args: argparse.Namespace) -> None:
    import torch

    from .loading import load_model
    from .tracing import tracing

    out = Path(args.out)
    if out.suffix != ".jsonl":
        raise UserError(f"cannot write {out.name!r}: the output format comes from the extension; use .jsonl")
    if out.is_dir():
        raise UserError(f"output path is a directory: {out}")
    if args.batch < 1:
        raise UserError(f"--batch must be >= 1, got {args.batch}")
    device = _device(args.device)
    model = load_model(args.model, weights=args.weights, seed=args.seed).to(device)
    model.train(args.train)
    size = model.config.img_size
    shape = (args.batch, model.config.in_chans, size, size)
    generator = torch.Generator().manual_seed(args.seed)
    if args.input == "zeros":
        images = torch.zeros(shape)
        description = "zeros"
    else:
        images = torch.randn(shape, generator=generator)
        description = f"standard normal noise (seed {args.seed})"
    images = images.to(device)
    header = {"input": {"description": description}}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(args.seed)
        with tracing(slice=args.slice, header=header) as trace:
            model(images)
    try:
        trace.save(out)
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror or error}") from None
    log.info("wrote %s (%d events)", out, len(trace.events))


def _device(choice: str) -> torch.device:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        args.handler(args)
    except UserError as error:
        if args.debug:
            raise
        print(f"swintrace: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("swintrace: interrupted", file=sys.stderr)
        return 130
    return 0
