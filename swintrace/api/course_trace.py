"""What ``swintrace course`` traces: the forward pass the chapters show, the construction of the
relative position index (it runs when the model is built, so it is traced on its own), and for a
Swin V1 the backward pass that the chapter "How Swin learns" quotes.

The backward is ``loss.backward()`` of the cross-entropy against ``target``: by default the
runner-up class (the second largest logit). Against its own top-1 a trained model is so sure
(the teaching model's loss on its triangle is about 5e-5) that every gradient is near zero;
against the runner-up the loss is large and the gradients say which way the model would move.
The forward stays in eval mode (no dropout, no drop-path), as the other chapters need it.

For the teaching variant the course then takes one plain SGD step of ``DEFAULT_LR`` along those
gradients and measures the loss again (in eval mode, on the same image): the header's
``train_step``, as ``swintrace.train_step`` writes it. The model is changed; the CLI drops it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..models.swin import SwinTransformer
from ..models.windows import relative_position_index
from ..recording.tracing import traced_function, tracing
from ..trace.events import Trace
from .backward import TRAINABLE_VARIANT, _eval_loss, _moved_rows, resolve_target
from .backward_options import DEFAULT_LR


def trace_for_course(model: SwinTransformer, images: torch.Tensor, described: dict[str, Any],
                     target: int | str | None = None, seed: int = 0) -> Trace:
    """The course's trace of ``model`` (eval mode) on ``images`` (B, 3, H, W): forward, index and, for
    a Swin V1, the backward against ``target`` (a class index or name; None: the runner-up)."""
    options: dict[str, Any] = {"stats": True, "header": {"input": described}, "pictures": True}
    window = model.config.stage_window(0)[0]
    model.eval()
    if model.config.version != 1:  # V2 learns its bias through an MLP: the chapter is told on a V1
        with torch.no_grad(), tracing(**options) as trace:
            model(images)
            traced_function(relative_position_index)(window)
        return trace
    index = resolve_target(model, target)
    tables = {name: p.detach().clone() for name, p in model.named_parameters()
              if name.endswith("relative_position_bias_table")}
    model.zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        with tracing(backward=True, **options) as trace:
            logits = model(images)  # B, classes
            traced_function(relative_position_index)(window)
            if index is not None:
                targets = torch.full(logits.shape[:1], index, dtype=torch.long, device=logits.device)  # B
            else:  # the runner-up of each image (the top-1 when there is one class only)
                targets = logits.detach().topk(min(2, logits.shape[-1]), dim=-1).indices[:, -1]  # B
            loss = F.cross_entropy(logits, targets)
            loss.backward()
    chosen = int(targets[0])  # read once, after the traced block
    labels = model.class_labels
    trace.header["backward"] = {"target": chosen, "label": labels[chosen] if labels else f"class {chosen}",
                                "top1": chosen == int(logits.detach()[0].argmax()), "loss": float(loss.detach())}
    if model.variant == TRAINABLE_VARIANT:
        with torch.no_grad():
            torch.optim.SGD(model.parameters(), lr=DEFAULT_LR).step()  # p <- p - lr * grad
        trace.header["train_step"] = {"lr": DEFAULT_LR, "optimizer": "sgd", "loss_before": float(loss.detach()),
                                      "loss_after": _eval_loss(model, images, chosen)[0],
                                      "moved": _moved_rows(model, tables)}
    return trace
