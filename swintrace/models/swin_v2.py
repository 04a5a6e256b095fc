"""Swin Transformer V2, instrumented: what V2 changed, traced step by step.

Parameter names and math are those of the official implementation
(microsoft/Swin-Transformer ``models/swin_transformer_v2.py``), so its
checkpoints load as they are. The rest is V1's (swin.py): the windows, the
shift and its mask, padding any input size, the patch embedding and the
head. What V2 changed, class by class:

* ``WindowAttention``: scaled cosine attention (q and k normalised, times a
  learned per-head ``logit_scale`` clamped at log(100), then exponentiated)
  and a continuous position bias: a small MLP (2 -> 512 -> heads) over the
  log-spaced offsets of the window, 16 * sigmoid of its output. Keys get no
  bias: the q/k/v bias is (q_bias, zeros, v_bias).
* ``SwinTransformerBlock``: res-post-norm, the norm after the attention and
  after the MLP, inside the residual branch.
* ``PatchMerging``: the norm after the reduction, over 2C channels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SwinConfig
from ..recording.tracing import is_tracing, step
from . import swin
from .windows import relative_coords_table, relative_position_index

# The logit scale's upper bound: attention logits at most 100 times a cosine.
LOGIT_SCALE_MAX = math.log(1.0 / 0.01)


class WindowAttention(swin.WindowAttentionBase):
    """Multi-head scaled cosine attention inside each window, with a continuous position bias."""

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool,
        attn_drop: float,
        proj_drop: float,
        pretrained_window_size: int = 0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.pretrained_window_size = pretrained_window_size
        self.num_heads = num_heads
        # Learned per head, starting at log(10): cosines times 10.
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((num_heads, 1, 1))))  # heads, 1, 1
        # The continuous position bias: an MLP from an offset (dy, dx) to one bias per head.
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False)
        )
        # Recomputed, never loaded (checkpoints' copies are ignored), as the index.
        self.register_buffer(
            "relative_coords_table", relative_coords_table(window_size, pretrained_window_size), persistent=False
        )  # 1, 2M-1, 2M-1, 2
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )  # M*M, M*M
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = None
            self.v_bias = None
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B*nW, N, C) with N = M*M tokens per window; mask: (nW, N, N) or None."""
        B_, N, C = x.shape
        step("input", x=x)
        qkv_bias = None
        if self.q_bias is not None:
            qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias, requires_grad=False), self.v_bias))  # 3C
            step("qkv_bias", qkv_bias=qkv_bias)
        else:
            step("qkv_bias", note="no_qkv_bias")
        qkv = F.linear(input=x, weight=self.qkv.weight, bias=qkv_bias)  # B*nW, N, 3C
        qkv = qkv.reshape(B_, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # 3, B*nW, heads, N, C/heads
        step("qkv", self.qkv, qkv=qkv, num_heads=self.num_heads)
        q, k, v = qkv.unbind(0)  # each B*nW, heads, N, C/heads
        step("unbind", q=q, k=k, v=v)

        # cosine attention
        q_unit, k_unit = F.normalize(q, dim=-1), F.normalize(k, dim=-1)  # each B*nW, heads, N, C/heads
        step("normalize_qk", q_unit=q_unit, k_unit=k_unit)
        attn = q_unit @ k_unit.transpose(-2, -1)  # B*nW, heads, N, N: cosines in [-1, 1]
        step("cosine", attn=attn)
        logit_scale = torch.clamp(self.logit_scale, max=LOGIT_SCALE_MAX).exp()  # heads, 1, 1
        step("logit_scale", logit_scale=logit_scale, learned=self.logit_scale, clamp_max=LOGIT_SCALE_MAX)
        attn = attn * logit_scale
        step("scale_cosine", attn=attn)

        if is_tracing():  # the table is a buffer built with the model; its steps are shown here
            relative_coords_table(self.window_size, self.pretrained_window_size)
        relative_position_bias_table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)  # (2M-1)^2, heads
        step("cpb_mlp", self.cpb_mlp, relative_coords_table=self.relative_coords_table,
             relative_position_bias_table=relative_position_bias_table)
        relative_position_bias = self.gather_bias(relative_position_bias_table, N)  # heads, N, N
        relative_position_bias = 16 * torch.sigmoid(relative_position_bias)  # heads, N, N in (0, 16)
        step("bias_sigmoid", relative_position_bias=relative_position_bias)
        return self.attend(attn, relative_position_bias, v, mask)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, window_size={self.window_size}, "
                f"pretrained_window_size={self.pretrained_window_size}, num_heads={self.num_heads}")


class SwinTransformerBlock(swin.SwinTransformerBlock):
    """One Swin V2 block: (shifted) window attention, then an MLP, each normalised inside its residual."""

    attention_class = WindowAttention

    def forward(
        self, x: torch.Tensor, H: int, W: int, attn_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """x: (B, H*W, C) -> (B, H*W, C); attn_mask: the stage's (nW, N, N) mask or None."""
        step("input", x=x, attn_mask=attn_mask)
        shortcut = x
        step("shortcut", shortcut=shortcut)
        x = self.shifted_window_attention(x, H, W, attn_mask)  # B, H*W, C
        x = self.norm1(x)
        step("post_norm", self.norm1, name="norm1", x=x)
        x = shortcut + self.drop_path(x)
        step("residual", self.drop_path, x=x)
        x = x + self.drop_path(self.norm2(self.mlp(x)))
        step("mlp_post_residual", self.mlp, self.norm2, self.drop_path, x=x)
        step("output", x=x)
        return x


class PatchMerging(swin.PatchMerging):
    """Downsampling between stages: each 2x2 group of tokens becomes one, normalised after the reduction."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """x: (B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), 2C)."""
        step("input", x=x)
        x = self.group_neighbours(x, H, W)  # B, H/2*W/2, 4C
        x = self.reduction(x)  # B, H/2*W/2, 2C
        step("reduction", self.reduction, x=x)
        x = self.norm(x)
        step("norm", self.norm, x=x)
        step("output", x=x)
        return x


class BasicLayer(swin.BasicLayer):
    """A basic Swin V2 layer for one stage: V2 blocks, then optional V2 merging."""

    block_class = SwinTransformerBlock
    merging_class = PatchMerging

    @staticmethod
    def attention_options(config: SwinConfig, stage: int) -> dict[str, Any]:
        """The window the stage's position-bias MLP was pre-trained with (0: its own)."""
        return {"pretrained_window_size": config.pretrained_window(stage)}


class SwinTransformerV2(swin.SwinTransformer):
    """Swin Transformer V2 for image classification."""

    layer_class = BasicLayer
    version = 2

    def __init__(self, config: SwinConfig, variant: str | None = None) -> None:
        super().__init__(config, variant)
        # The official initialisation of res-post-norm: every block's branches start at zero.
        for layer in self.layers:
            for block in layer.blocks:
                for norm in (block.norm1, block.norm2):
                    nn.init.zeros_(norm.weight)
                    nn.init.zeros_(norm.bias)


def build_model(config: SwinConfig, variant: str | None = None) -> swin.SwinTransformer:
    """The model of ``config``'s generation: Swin V1 or Swin V2."""
    return (SwinTransformerV2 if config.version == 2 else swin.SwinTransformer)(config, variant=variant)
