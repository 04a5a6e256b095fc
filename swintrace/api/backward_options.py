"""The options of ``swintrace run`` that trace a backward or a training step (torch-free: the
command line builds its parser before torch is imported). What they do is in api/backward.py."""

from __future__ import annotations

import argparse

from ..errors import UserError

DEFAULT_LR = 0.1


def add_backward_options(run: argparse.ArgumentParser) -> None:
    """--backward, --target, --train-step, --lr."""
    run.add_argument("--backward", action="store_true",
                     help="also trace the backward pass of the cross-entropy against --target: every step's "
                     "gradient, in the order autograd computes them, and the bias tables' gradients")
    run.add_argument("--target", metavar="NAME|INDEX",
                     help="the class the loss is measured against, by name or index (default: the top-1 prediction)")
    run.add_argument("--train-step", action="store_true",
                     help="apply one plain SGD step to the teaching model (swin_teach) and show what changed: "
                     "the loss before and after, the bias-table rows that moved most (traces the backward too)")
    run.add_argument("--lr", type=float, help=f"learning rate of --train-step (default {DEFAULT_LR})")


def learning(args: argparse.Namespace) -> bool:
    """Whether the command traces a backward; --target and --lr without what uses them are refused."""
    if args.lr is not None and not args.train_step:
        raise UserError.of("backward_option_alone", option="--lr", needs="--train-step")
    if args.target is not None and not (args.backward or args.train_step):
        raise UserError.of("backward_option_alone", option="--target", needs="--backward")
    return bool(args.backward or args.train_step)
