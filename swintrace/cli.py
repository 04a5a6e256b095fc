"""The ``swintrace`` command line.

Every mistake a user can make ends as one line on stderr and exit code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from ._version import __version__
from .api.backward_options import add_backward_options, learning
from .api.output import check_output, write_output
from .config import ALIASES, VARIANTS, variant_of
from .errors import OneLineParser, UserError, bounded_integer, log_to_stderr, printable
from .files import committing
from .trace.tracefile import load_trace
from .trace.validate import MAX_SLICE, MAX_TOKENS
from .words import say

log = logging.getLogger("swintrace")

EXIT_USER_ERROR = 2
EXAMPLES = """examples:
  swintrace run --image examples/cat.jpg --out report.html
  swintrace run --image sample:cat --out report.html
  swintrace run --input zeros --out report.html
  swintrace run --input zeros --lang zh --out walkthrough.md
  swintrace run --input random --model swin_teach --seed 1 --out teach.jsonl
  swintrace render teach.jsonl --out teach.html
  swintrace show teach.jsonl --filter softmax
"""

SEED = bounded_integer(0, 2**63 - 1)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="swintrace",
        description="Trace one real forward pass of a Swin Transformer, step by step.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"swintrace {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only: no progress")
    parser.add_argument("-v", "--verbose", action="store_true", help="print more about what happens")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run",
        help="trace one forward pass and write the trace",
        description="Trace one forward pass of a Swin Transformer and write its event log.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("--image", help="an image file to trace (JPEG, PNG, ...), or sample:cat, the photo that "
                        "ships with swintrace")
    source.add_argument(
        "--input", type=_input_kind, metavar="zeros|random|shape:NAME",
        help="synthetic input instead of an image: zeros (the reference walkthrough's), seeded noise, or an "
        "image of the teaching data set, e.g. shape:triangle (with swin_teach's trained weights, the default then)",
    )
    run.add_argument("--size", type=bounded_integer(1, 4096), help="input side in pixels (default: the variant's)")
    run.add_argument("--no-crop", action="store_true",
                     help="resize the shorter side to --size and keep the aspect ratio, no center crop")
    run.add_argument("--model", type=_model_name, metavar="VARIANT",
                     help="model variant, or its timm or Hugging Face name (default: the named weights' variant, else swin_t)")
    run.add_argument("--weights", default="pretrained",
                     help="'pretrained' (default: the variant's ImageNet weights, downloaded once; seeded "
                     "random weights with a warning when they cannot be had), 'random', a pretrained name "
                     "such as swin_t, or a checkpoint file (official, timm, torchvision or Hugging Face)")
    run.add_argument("--seed", type=SEED, default=0, help="seed for random weights, input and drop-path")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                     help="where the model runs (auto: cuda when available)")
    run.add_argument("--batch", type=bounded_integer(1, 4096), default=1, help="batch size of the synthetic input")
    run.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                     help="cast the model and its input (half precision where torch supports it on the device)")
    run.add_argument("--train", action="store_true", help="trace in training mode (seeded drop-path)")
    run.add_argument("--slice", type=bounded_integer(1, MAX_SLICE), default=3, help="keep t[:N, :N, ...] of every tensor")
    run.add_argument("--no-stats", action="store_true",
                     help="leave out each tensor's min/max/mean/std (a faster trace)")
    run.add_argument("--lang", choices=("en", "zh"), default="en", help="report language")
    run.add_argument("--no-pictures", action="store_true", help="no pictures (and no data recorded for them)")
    run.add_argument("--block", default="layers.0.blocks.1", help="block whose attention is drawn")
    run.add_argument("--head", type=bounded_integer(0, 1023), default=0, help="attention head drawn")
    run.add_argument("--explore", metavar="BLOCK,...",
                     help="blocks whose attention the HTML report's window explorer holds (default: the first "
                     "two blocks of the first and of the last stage)")
    run.add_argument("--query", help="query patch for the attention picture, as Y,X pixels of the input "
                     "(default: in a shifted block, a patch of the bottom-right window, which the mask splits)")
    _report_options(run)
    add_backward_options(run)
    run.add_argument("--out", required=True, help="output file: report.html, report.md or trace.jsonl")
    run.set_defaults(handler=_run)

    render = commands.add_parser("render", help="render a saved trace as a report", description="Render a saved "
                                 "trace (.jsonl) as HTML or Markdown, without re-running the model.")
    render.add_argument("trace", help="a trace written by 'swintrace run --out trace.jsonl'")
    render.add_argument("--lang", choices=("en", "zh"), default="en", help="report language")
    render.add_argument("--no-pictures", action="store_true", help="leave the pictures out")
    _report_options(render)
    render.add_argument("--out", required=True, help="output file: report.html or report.md")
    render.set_defaults(handler=_render)

    show = commands.add_parser("show", help="print a saved trace as a tree in the terminal",
                               description="Print the walkthrough of a saved trace as a colored tree.")
    show.add_argument("trace", help="a trace written by 'swintrace run --out trace.jsonl'")
    show.add_argument("--lang", choices=("en", "zh"), default="en", help="language of titles")
    show.add_argument("--depth", type=bounded_integer(1, 64), help="show scopes down to this depth (1: stages only)")
    show.add_argument("--filter", help="keep steps whose title, id or kind contains this text")
    show.set_defaults(handler=_show)
    course = commands.add_parser(
        "course", help="write course material: a static site of chapters with live traces",
        description="Trace one forward pass and write a small static site (HTML and Markdown): one "
                    "chapter per concept, with explanations, pictures, the traced steps and exercises.",
    )
    course.add_argument("--out", required=True, help="output folder (created if missing)")
    course.add_argument("--lang", choices=("en", "zh"), help="one language (default: English and Chinese)")
    course.add_argument("--image", help="an image file to trace, or sample:cat (default: standard normal noise)")
    course.add_argument("--model", type=_model_name, metavar="VARIANT",
                        help="model variant, or its timm or Hugging Face name (default: swin_t)")
    course.add_argument("--weights", default="pretrained",
                        help="'pretrained' (default), 'random', a pretrained name or a checkpoint file")
    course.add_argument("--seed", type=SEED, default=0, help="seed for random weights and input")
    course.add_argument("--target", metavar="NAME|INDEX", help="the class the chapter How Swin learns measures "
                        "the loss against, by name or index (default: the runner-up prediction)")
    course.add_argument("--force", action="store_true",
                        help="replace files in --out that swintrace did not write (default: refuse)")
    course.set_defaults(handler=_course)

    compare = commands.add_parser(
        "diff", help="compare two saved traces: where they first part, and by how much",
        description="Pair the steps of two traces and compare their shapes and values; write an HTML or "
                    "Markdown page naming the first step where they part beyond the tolerance.",
    )
    compare.add_argument("traces", nargs=2, metavar="TRACE", help="two traces written by 'swintrace run --out X.jsonl'")
    compare.add_argument("--rtol", type=_tolerance, help="relative tolerance (default: torch.testing's for the finer input dtype)")
    compare.add_argument("--atol", type=_tolerance, help="absolute tolerance (default: as --rtol)")
    compare.add_argument("--lang", choices=("en", "zh"), default="en", help="page language")
    compare.add_argument("--out", required=True, help="output file: diff.html or diff.md")
    compare.set_defaults(handler=_diff)

    models = commands.add_parser("models", help="list the model variants and their named weights", description=
                                 "List every variant with its config, parameters, FLOPs and named pretrained weights.")
    models.set_defaults(handler=_models)
    for command in (run, render, show, course, compare, models):
        for flags, help_text in ((("--debug",), "show tracebacks of errors"),
                                 (("-q", "--quiet"), "print errors only: no progress"),
                                 (("-v", "--verbose"), "print more about what happens")):
            command.add_argument(*flags, action="store_true", default=argparse.SUPPRESS, help=help_text)
    return parser


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--explain", action="store_true",
                        help="Markdown: follow each step's title with what it does and why (HTML always has it)")
    parser.add_argument("--only", metavar="SCOPE",
                        help="a report of one part only, e.g. layers.0.blocks.1 (with the summary): a handout")
    parser.add_argument("--course", metavar="DIR",
                        help="a course folder written by 'swintrace course' that each scope of an HTML report "
                        "links to (default: a folder named course beside the report, if there is one)")


def _run(args: argparse.Namespace) -> None:
    import torch

    from .api.backward import traced_for_command
    from .api.inputs import check_dtype, make_input, variant_for
    from .checkpoints.loading import load_model
    from .images.prepare import EvalTransform, check_size, open_image
    from .recording.capture import PictureOptions
    from .recording.tracing import tracing

    out = check_output(args.out)
    device = _device(args.device)
    dtype = check_dtype(args.dtype, device)
    variant = variant_for(args.model, args.weights, args.input)
    size = check_size(args.size if args.size is not None else VARIANTS[variant].img_size)
    if args.only is not None and out.suffix.lower() == ".jsonl":
        raise UserError.of("only_report")  # a trace is whole: render it with --only
    image = open_image(args.image) if args.image else None  # checked before any download, as the size:
    width, height = EvalTransform(size, None).output_size(*image.image.size) if image and args.no_crop else (size, size)
    patch = VARIANTS[variant].patch_size
    if -(-height // patch) * -(-width // patch) > MAX_TOKENS:
        raise UserError.of("input_too_many_tokens", height=height, width=width, limit=MAX_TOKENS)
    with progress(f"loading {variant}", args.quiet):
        model = load_model(variant, weights=args.weights, seed=args.seed)
    images, described = make_input(model, image, args.input or "zeros", args.seed, size,
                                    crop=not args.no_crop, batch=args.batch)
    model.to(device=device, dtype=dtype)
    log.debug("weights: %s; input: %s on %s", model.weights_source, described["description"], device)
    model.train(args.train)
    explored = None if args.explore is None else tuple(dict.fromkeys(
        part.strip() for part in args.explore.split(",") if part.strip()))  # each block once, in order
    if explored == ():
        raise UserError.of("explore_empty")
    if not args.no_pictures:
        _check_block(model, args.block, "--block")
        for block in explored or ():
            _check_block(model, block, "--explore")
    images = images.to(device=device, dtype=dtype)
    header = {"input": described}
    pictures = False if args.no_pictures else PictureOptions(args.block, args.head, _query(args.query), explored)
    if learning(args):  # --backward, --train-step: api/backward.py
        trace = traced_for_command(model, images, args, slice=args.slice, stats=not args.no_stats, header=header,
                                   pictures=pictures)
    else:
        with progress("tracing", args.quiet), torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(args.seed)
            with tracing(slice=args.slice, stats=not args.no_stats, header=header, pictures=pictures) as trace:
                model(images)
    log.debug("traced %s in %.2f s", variant, trace.footer["timings"][0]["seconds"])
    with progress(f"writing {out.name}", args.quiet):
        write_output(trace, out, args.lang, pictures=not args.no_pictures, explain=args.explain,
                     course=args.course, only=args.only)
    log.info("wrote %s (%d events)", out, len(trace.events))


def _render(args: argparse.Namespace) -> None:
    out = check_output(args.out, (".html", ".md"))
    trace = load_trace(args.trace)
    with progress(f"writing {out.name}", args.quiet):
        write_output(trace, out, args.lang, pictures=not args.no_pictures, explain=args.explain,
                     course=args.course, only=args.only)
    log.info("wrote %s", out)


def _diff(args: argparse.Namespace) -> None:
    from .api.compare import write_diff
    from .trace.diff import diff

    out = check_output(args.out, (".html", ".md"))
    with progress(f"writing {out.name}", args.quiet):
        write_diff(diff(*args.traces, rtol=args.rtol, atol=args.atol), out, args.lang)
    log.info("wrote %s", out)


def _tolerance(text: str) -> float:
    """--rtol, --atol: a finite number >= 0 (1e-5, 0.01)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (text.isascii() and math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {printable(text[:40])!r}")
    return value


def _show(args: argparse.Namespace) -> None:
    from rich.console import Console

    from .render.terminal import render_terminal

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich would exit with code 1; main() ends quietly instead
            raise BrokenPipeError

    trace = load_trace(args.trace)
    try:
        render_terminal(trace, _Console(), lang=args.lang, depth=args.depth, text_filter=args.filter)
    except BrokenPipeError:
        raise
    except OSError as error:
        raise UserError.of("stdout", why=error.strerror or error) from None


def _course(args: argparse.Namespace) -> None:
    from .api.course_trace import trace_for_course
    from .api.inputs import make_input, variant_for
    from .checkpoints.loading import PRETRAINED_DEFAULT, load_model
    from .checkpoints.pretrained import default_weights
    from .images.prepare import open_image
    from .images.shapes import SHAPE_PREFIX, WEIGHTS_NAME
    from .render.course import build_course

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError.of("course_out_file", out=out)
    if any(parent.exists() and not parent.is_dir() for parent in out.parents):
        raise UserError.of("course_out_parent", out=out)
    variant = variant_for(args.model, args.weights)
    # A model trained on the shapes data set is taught with one of its images; others with noise.
    taught = (default_weights(variant) if args.weights == PRETRAINED_DEFAULT else args.weights) == WEIGHTS_NAME
    kind = f"{SHAPE_PREFIX}triangle" if taught else "random"
    image = open_image(args.image) if args.image else None  # checked before any download
    with progress(f"loading {variant}", args.quiet):
        model = load_model(variant, weights=args.weights, seed=args.seed)
    images, described = make_input(model, image, kind, args.seed, VARIANTS[variant].img_size)
    with progress("tracing", args.quiet):  # forward, the index's construction, a V1's backward: api/course_trace.py
        trace = trace_for_course(model, images, described, args.target, args.seed)
    with progress(f"writing the course into {out}", args.quiet):
        try:
            written = build_course(trace, out, (args.lang,) if args.lang else ("en", "zh"), force=args.force)
        except OSError as error:
            raise UserError.of("course_write", out=out, why=error.strerror or error) from None
    log.info("wrote %d files into %s", len(written), out)


def _check_block(model: torch.nn.Module, block: str, option: str) -> None:
    """--block and --explore must name blocks of this model."""
    blocks = [name for name, _ in model.named_modules() if re.fullmatch(r"layers\.\d+\.blocks\.\d+", name)]
    if block not in blocks:
        shown = block if len(block) <= 40 else block[:40] + "…"
        raise UserError.of("no_block", option=option, block=shown, first=blocks[0], last=blocks[-1])


def _input_kind(text: str) -> str:
    """--input: zeros, random or shape:NAME (a class of the teaching data set)."""
    from .images.shapes import SHAPE_PREFIX, class_index

    if text in ("zeros", "random"):
        return text
    if text.startswith(SHAPE_PREFIX):
        try:
            class_index(text[len(SHAPE_PREFIX):])
        except UserError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text
    raise argparse.ArgumentTypeError(f"expected zeros, random or shape:NAME, not {text[:40]!r}")


def _query(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 2 or not all(part.isascii() and part.isdigit() for part in parts):  # not '٣' nor '1_0'
        raise UserError.of("query_format", text=repr(text[:40]))
    return int(parts[0]), int(parts[1])


def _model_name(text: str) -> str:
    """--model: one of our variants, or the ecosystem's name for it."""
    try:
        return variant_of(text)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _models(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from .checkpoints.pretrained import PRETRAINED, default_weights
    from .flops import total_flops
    from .models.swin_v2 import build_model

    table = Table(title="swintrace model variants")
    for column in ("variant", "input", "embed_dim", "depths", "heads", "window", "parameters", "FLOPs",
                   "named weights", "also known as"):
        table.add_column(column, overflow="fold")
    for name, config in VARIANTS.items():
        import torch

        with torch.device("meta"):
            parameters = sum(p.numel() for p in build_model(config).parameters())
        named = default_weights(name)
        weights = f"--weights {named}: {PRETRAINED[named].source}" if named else "none (random init)"
        table.add_row(
            name, f"{config.img_size}x{config.img_size}", str(config.embed_dim), str(list(config.depths)),
            str(list(config.num_heads)), str(config.window_size), f"{parameters / 1e6:.2f} M",
            _giga(total_flops(config, config.img_size, config.img_size)), weights,
            "\n".join(alias for alias, (variant, _) in ALIASES.items() if variant == name),
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _giga(flops: int) -> str:
    return f"{flops / 1e9:.2f} G" if flops >= 1e8 else f"{flops / 1e6:.2f} M"


@contextmanager
def progress(message: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr while a slow step runs; nothing when quiet or not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def _device(choice: str) -> torch.device:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError.of("no_cuda")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


class _Interrupted(BaseException):
    """A signal asked the command to stop (raised by ``_on_signal``; cleanup runs on the way out)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: object) -> None:
    """SIGINT, SIGTERM, SIGHUP: stop, except while finished files are being renamed into place."""
    if committing():
        return  # the renames finish; the command then ends as it would have
    raise _Interrupted(signum)


@contextmanager
def _signal_handlers() -> Iterator[None]:
    """``_on_signal`` for SIGINT, SIGTERM and SIGHUP while a command runs (then the previous handlers).

    A signal that was ignored when the command started (``nohup``, ``trap '' INT``) stays ignored.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (main() called from a worker thread)
        return
    numbers = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    # A signal ignored when we started stays ignored (``nohup`` ignores SIGHUP for us).
    previous = {number: signal.signal(number, _on_signal) for number in numbers
                if signal.getsignal(number) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Warnings of Pillow, numpy or torch as one line each (their first line)."""
    lines = str(message).strip().splitlines()
    log.warning("swintrace: warning: %s", printable(lines[0] if lines else category.__name__))


def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and any(
            text in str(error) for text in ("can't allocate memory", "out of memory", "not enough memory")
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    log_to_stderr(level)
    previous_show_warning = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        with _signal_handlers():
            args.handler(args)
    except UserError as error:
        if args.debug:
            raise
        lang = getattr(args, "lang", None) or "en"  # errors of a --lang zh command are said in Chinese
        print(f"swintrace: {say(lang, 'errors.prefix')}: {printable(error.in_language(lang))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (KeyboardInterrupt, _Interrupted) as interruption:
        signum = getattr(interruption, "signum", 2)
        print("swintrace: interrupted: nothing was written", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        # The reader went away (``swintrace show ... | head``): what it wanted was written.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (MemoryError, RuntimeError) as error:
        if args.debug or not _out_of_memory(error):
            raise
        hint = "try a smaller --batch, --size or model" if args.command in ("run", "course") else "the trace is too large"
        print(f"swintrace: error: out of memory: {hint}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        warnings.showwarning = previous_show_warning
    return 0
