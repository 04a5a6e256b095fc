"""How Swin learns, from Python: one traced forward and backward, and one training step.

    trace = swintrace.trace_image(model, "cat.jpg", backward=True, target="tabby")
    trace.backward                       # the gradients, in the order autograd made them
    trace = swintrace.train_step(teacher, swintrace.shape_image("triangle"), lr=0.1)
    trace.header["train_step"]           # the loss before and after, the bias-table rows that moved most

The loss is the cross-entropy of the logits against ``target`` (a class index or name; by
default each image's top-1 prediction). The traced backward is ``loss.backward()`` itself:
the parameters' ``.grad`` hold its gradients afterwards, bit-identical to an untraced one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..models.swin import SwinTransformer
from ..recording.tracing import tracing
from ..trace.events import Trace

# --train-step trains this variant only: its whole step takes a fraction of a second.
TRAINABLE_VARIANT = "swin_teach"
MAX_LR = 100.0
MAX_TARGET_DIGITS = 9
MOVED_ROWS = 8  # the bias-table rows a training step lists, those that moved most


def resolve_target(model: SwinTransformer, target: int | str | None) -> int | None:
    """A class index from an index, its digits or a class name (any case); None stays None (top-1)."""
    if target is None:
        return None
    classes = model.config.num_classes
    digits = target.strip() if isinstance(target, str) else ""
    if digits.isdecimal():  # any script's digits (int() reads them; not isdigit's superscripts, "²")
        if len(digits) > MAX_TARGET_DIGITS:  # int() refuses 4,300 digits; no model has a billion classes
            raise UserError.of("target_index", target=digits[:MAX_TARGET_DIGITS] + "…", classes=classes,
                               last=classes - 1)
        target = int(digits)
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < classes:
            raise UserError.of("target_index", target=target, classes=classes, last=classes - 1)
        return target
    if isinstance(target, str):
        labels = [label.lower() for label in model.class_labels or ()]
        if target.strip().lower() in labels:
            return labels.index(target.strip().lower())
        raise UserError.of("target_name", target=repr(target[:40]),
                           examples=", ".join(list(model.class_labels or ())[:5]) or "0, 1, 2")
    raise UserError.of("target_type", type=type(target).__name__)


def check_trainable(model: SwinTransformer) -> None:
    """The teaching model, as a Swin V1: a step's story is the bias table's rows, which a V2 has not
    (``load_model("swin_teach", version=2)`` keeps the variant's name but is a V2)."""
    if model.variant != TRAINABLE_VARIANT or model.config.version != 1:
        variant = f"{model.variant} (Swin V{model.config.version})" if model.variant == TRAINABLE_VARIANT \
            else model.variant
        raise UserError.of("train_step_model", variant=str(variant)[:40], trainable=TRAINABLE_VARIANT)


def check_lr(lr: float) -> float:
    """A learning rate: a finite number above 0, at most MAX_LR."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr <= MAX_LR) or not math.isfinite(lr):
        raise UserError.of("train_lr", lr=repr(lr)[:40], high=MAX_LR)
    return float(lr)


def traced_backward(model: SwinTransformer, images: torch.Tensor, target: int | str | None, seed: int,
                    **options: Any) -> Trace:
    """One traced forward and ``loss.backward()`` of ``model`` on ``images`` (B, 3, H, W).

    The parameters' gradients are set to None first, so that afterwards their ``.grad`` is
    this backward's. The header's ``backward`` says the target and the loss."""
    index = resolve_target(model, target)
    model.zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        with tracing(backward=True, **options) as trace:
            logits = model(images)  # B, classes
            targets = logits.detach().argmax(dim=-1) if index is None else torch.full(
                logits.shape[:1], index, dtype=torch.long, device=logits.device)  # B
            loss = F.cross_entropy(logits, targets)
            loss.backward()
    first = int(targets[0])  # read once, after the traced block
    labels = model.class_labels
    trace.header["backward"] = {"target": first, "label": labels[first] if labels else f"class {first}",
                                "top1": index is None, "loss": float(loss.detach())}
    return trace


def train_step(model: SwinTransformer, image: Any, *, lr: float = 0.1, target: int | str | None = None,
               seed: int = 0, **options: Any) -> Trace:
    """One plain SGD step of the teaching model on one image, traced: returns the trace of its
    training-mode forward and backward, whose header's ``train_step`` holds the loss before and
    after (both in eval mode, on the same image) and the bias-table rows that moved most.

    ``model`` is changed (that is the step) and left in eval mode. ``image``: as ``trace_image``'s.
    """
    from .trace_image import prepare_for

    if not isinstance(model, SwinTransformer):
        raise UserError.of("trace_image_model", type=type(model).__name__)
    check_trainable(model)
    lr = check_lr(lr)
    images, described = prepare_for(model, image)
    options.setdefault("stats", True)
    options.setdefault("pictures", True)
    options.setdefault("header", {"input": described})
    return train_step_on(model, images, lr, target, seed, **options)


def train_step_on(model: SwinTransformer, images: torch.Tensor, lr: float, target: int | str | None, seed: int,
                  **options: Any) -> Trace:
    """``train_step`` on an input already prepared (B, 3, H, W); ``options`` go to ``tracing()``."""
    index = resolve_target(model, target)
    before = _eval_loss(model, images, index)
    tables = {name: p.detach().clone() for name, p in model.named_parameters()
              if name.endswith("relative_position_bias_table")}
    model.train()
    trace = traced_backward(model, images, index if index is not None else before[1], seed, **options)
    torch.optim.SGD(model.parameters(), lr=lr).step()  # plain SGD: p <- p - lr * grad
    model.eval()
    after = _eval_loss(model, images, trace.header["backward"]["target"])
    trace.header["train_step"] = {"lr": lr, "optimizer": "sgd", "loss_before": before[0], "loss_after": after[0],
                                  "moved": _moved_rows(model, tables)}
    return trace


def _eval_loss(model: SwinTransformer, images: torch.Tensor, index: int | None) -> tuple[float, int]:
    """(cross-entropy in eval mode, the target used: ``index``, or image 0's top-1)."""
    model.eval()
    with torch.no_grad():
        logits = model(images)  # B, classes
    chosen = int(logits[0].argmax()) if index is None else index
    targets = torch.full(logits.shape[:1], chosen, dtype=torch.long, device=logits.device)  # B
    return float(F.cross_entropy(logits, targets)), chosen


def _moved_rows(model: SwinTransformer, tables: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """The bias-table rows (offsets) that the step moved most: largest |change| over heads."""
    rows = []
    for name, parameter in model.named_parameters():
        if name in tables:
            change = (parameter.detach() - tables[name]).float().cpu()  # (2M-1)^2, heads
            for row, values in enumerate(change.tolist()):
                largest = max(values, key=abs)
                rows.append({"parameter": name, "row": row, "head": values.index(largest), "change": largest})
    rows.sort(key=lambda item: -abs(item["change"]))
    return rows[:MOVED_ROWS]


def traced_for_command(model: SwinTransformer, images: torch.Tensor, args: Any, **options: Any) -> Trace:
    """``swintrace run --backward`` (a forward in the mode ``--train`` says) or ``--train-step``
    (one SGD step of ``--lr``, whose forward is in training mode); ``options`` go to ``tracing()``."""
    from .backward_options import DEFAULT_LR

    if not args.train_step:
        model.train(args.train)
        return traced_backward(model, images, args.target, args.seed, **options)
    check_trainable(model)
    return train_step_on(model, images, check_lr(DEFAULT_LR if args.lr is None else args.lr), args.target,
                         args.seed, **options)
