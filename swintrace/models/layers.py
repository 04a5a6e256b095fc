"""Small building blocks of Swin V1 and V2: the patch embedding, stochastic depth and the MLP.

Instrumented like the rest of the model: each call is a scope of the walkthrough.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SwinConfig
from ..errors import UserError
from ..recording.tracing import Instrumented, step, traced_function


@traced_function
def drop_path_f(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch of some samples.

    x: (B, ...). Each sample keeps its branch with probability 1 - drop_prob,
    scaled by 1 / (1 - drop_prob) so that the expectation is unchanged.
    """
    step("input", x=x)
    if drop_prob == 0.0 or not training:
        step("output", output=x, note="drop_path_zero" if drop_prob == 0.0 else "drop_path_eval", drop_prob=drop_prob)
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # B, 1, 1: one draw per sample
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()  # 1 keeps the sample's branch, 0 drops it
    output = x.div(keep_prob) * random_tensor
    step("output", output=output, random_tensor=random_tensor, keep_prob=keep_prob)
    return output


class DropPath(Instrumented):
    """Stochastic depth per sample, applied to a residual branch."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C) -> (B, L, C)."""
        step("input", x=x)
        ans = drop_path_f(x, self.drop_prob, self.training)
        step("output", ans=ans)
        return ans

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


class Mlp(Instrumented):
    """The block's feed-forward network: Linear, GELU, Linear, with dropouts."""

    def __init__(self, dim: int, hidden_dim: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C) -> (B, L, C) through a hidden width of mlp_ratio * C."""
        step("input", x=x)
        x = self.fc1(x)  # B, L, hidden
        step("fc1", self.fc1, x=x)
        x = self.act(x)
        step("act", self.act, x=x)
        x = self.drop1(x)
        step("dropout", self.drop1, name="drop1", x=x)
        x = self.fc2(x)  # B, L, C
        step("fc2", self.fc2, x=x)
        x = self.drop2(x)
        step("dropout", self.drop2, name="drop2", x=x)
        step("output", x=x)
        return x


class PatchEmbed(Instrumented):
    """Image to tokens: a patch_size-strided convolution, then LayerNorm."""

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.proj = nn.Conv2d(
            config.in_chans, config.embed_dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.norm = nn.LayerNorm(config.embed_dim) if config.patch_norm else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """x: (B, 3, H, W) -> (tokens (B, H/p * W/p, C), H/p, W/p), H and W rounded up."""
        step("input", x=x)
        _, _, H, W = x.shape
        pad_w = (self.patch_size - W % self.patch_size) % self.patch_size
        pad_h = (self.patch_size - H % self.patch_size) % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))  # B, 3, H + pad_h, W + pad_w
            step("patch_pad", x=x, pad_h=pad_h, pad_w=pad_w)
        else:
            step("patch_pad", x=x, note="no_patch_pad", patch_size=self.patch_size)
        x = self.proj(x)  # B, C, H/p, W/p
        step("patch_proj", self.proj, x=x)
        _, _, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)  # flatten: B, C, H*W; transpose: B, H*W, C
        step("flatten", x=x)
        if self.norm is not None:
            x = self.norm(x)
            step("norm", self.norm, x=x)
        else:
            step("norm", note="no_patch_norm")
        step("output", x=x, H=H, W=W)
        return x, H, W


def check_input(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse anything but a batch of images (B, in_chans, H, W) with B, H, W >= 1."""
    x = args[0] if args else kwargs.get("x")
    if not isinstance(x, torch.Tensor):
        raise UserError.of("input_not_tensor", type=type(x).__name__)
    if x.ndim != 4 or x.shape[1] != model.config.in_chans or 0 in x.shape:
        raise UserError.of("input_shape", channels=model.config.in_chans, shape=tuple(x.shape))


def init_weights(module: nn.Module) -> None:
    """The official initialisation: truncated normal linears, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
