"""Which parameters' gradients a backward trace of Swin records, and how.

The lesson of the backward is in a few parameters: each block's relative position bias
table (kept whole: (2M-1)^2 x heads numbers, the picture of which offsets learn), its qkv
projection, the patch embedding and the classification head (summaries).
"""

from __future__ import annotations

from torch import nn


def lesson_parameters(model: nn.Module) -> dict[str, tuple[str, bool]]:
    """name -> (kind of its gradient event, whether the gradient is kept whole)."""
    roles = {"patch_embed.proj.weight": ("patch_weight_grad", False), "head.weight": ("head_weight_grad", False)}
    for name, _ in model.named_parameters():
        if name.endswith(".attn.relative_position_bias_table"):
            roles[name] = ("bias_table_grad", True)
        elif name.endswith(".attn.qkv.weight"):
            roles[name] = ("qkv_weight_grad", False)
    return roles
