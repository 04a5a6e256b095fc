"""An independent, uninstrumented Swin V2 written from the official code's structure.

It follows microsoft/Swin-Transformer ``models/swin_transformer_v2.py``: fixed
input resolution, masks registered as buffers in the blocks, the official
window rule per block, the relative coordinates table and index registered as
(persistent) buffers, ``Mlp.drop`` shared by both dropouts, res-post-norm, the
merge normalising after its reduction. Its state dict has the official key
names, buffers included, so it plays the official V2 checkpoint in tests. No
tracing code is imported here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .official_swin import (
    OfficialDropPath,
    OfficialMlp,
    OfficialPatchEmbed,
    official_mask,
    partition,
    reverse,
)


def coords_table(m: int, pretrained: int) -> torch.Tensor:
    """(1, 2m-1, 2m-1, 2): the official relative coordinates table."""
    span = torch.arange(-(m - 1), m, dtype=torch.float32)
    table = torch.stack(torch.meshgrid([span, span], indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
    side = pretrained if pretrained > 0 else m
    table[:, :, :, 0] /= side - 1
    table[:, :, :, 1] /= side - 1
    table *= 8
    return torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / np.log2(8)


class OfficialAttentionV2(nn.Module):
    def __init__(self, dim: int, m: int, heads: int, pretrained: int) -> None:
        super().__init__()
        self.m, self.heads = m, heads
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True),
                                     nn.Linear(512, heads, bias=False))
        self.register_buffer("relative_coords_table", coords_table(m, pretrained))
        ys, xs = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
        flat = torch.stack([ys.flatten(), xs.flatten()])  # 2, M*M
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()  # M*M, M*M, 2
        rel[:, :, 0] += m - 1
        rel[:, :, 1] += m - 1
        rel[:, :, 0] *= 2 * m - 1
        self.register_buffer("relative_position_index", rel.sum(-1))
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b_, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias, requires_grad=False), self.v_bias))
        qkv = F.linear(input=x, weight=self.qkv.weight, bias=bias)
        qkv = qkv.reshape(b_, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=torch.log(torch.tensor(1.0 / 0.01))).exp()
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.heads)
        position = table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()
        attn = attn + 16 * torch.sigmoid(position).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(b_, n, c)
        return self.proj_drop(self.proj(x))


class OfficialBlockV2(nn.Module):
    def __init__(self, dim: int, resolution: int, heads: int, m: int, shift: int, mlp_ratio: float,
                 drop_path: float, pretrained: int) -> None:
        super().__init__()
        self.resolution = resolution
        if resolution <= m:  # the official rule
            shift, m = 0, resolution
        self.m, self.shift = m, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = OfficialAttentionV2(dim, m, heads, pretrained)
        self.drop_path = OfficialDropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = OfficialMlp(dim, int(dim * mlp_ratio), 0.0)
        self.register_buffer("attn_mask", official_mask(resolution, m, shift))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        b, _, c = x.shape
        shortcut = x
        x = x.view(b, r, r, c)
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = partition(x, self.m).view(-1, self.m * self.m, c)
        windows = self.attn(windows, self.attn_mask).view(-1, self.m, self.m, c)
        x = reverse(windows, self.m, r, r)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + self.drop_path(self.norm1(x.view(b, r * r, c)))
        return x + self.drop_path(self.norm2(self.mlp(x)))


class OfficialMergingV2(nn.Module):
    def __init__(self, resolution: int, dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        b, _, c = x.shape
        x = x.view(b, r, r, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.norm(self.reduction(x.view(b, -1, 4 * c)))


class OfficialSwinV2(nn.Module):
    """Swin V2 at a fixed square resolution, with official key names (buffers included)."""

    def __init__(self, img_size: int = 256, patch_size: int = 4, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size: int = 8,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.2, pretrained_window_sizes=(0, 0, 0, 0)) -> None:
        super().__init__()
        self.patch_embed = OfficialPatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_drop = nn.Dropout(0.0)
        rates = [r.item() for r in torch.linspace(0, drop_path_rate, sum(depths))]
        resolution = img_size // patch_size
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            start, dim, r = sum(depths[:i]), embed_dim * 2**i, resolution // 2**i
            layer = nn.Module()
            layer.blocks = nn.ModuleList(
                OfficialBlockV2(dim, r, num_heads[i], window_size, 0 if j % 2 == 0 else window_size // 2,
                                mlp_ratio, rates[start + j], pretrained_window_sizes[i])
                for j in range(depth))
            layer.downsample = None if i == len(depths) - 1 else OfficialMergingV2(r, dim)
            self.layers.append(layer)
        features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(features)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_drop(self.patch_embed(x))
        for layer in self.layers:
            for block in layer.blocks:
                x = block(x)
            if layer.downsample is not None:
                x = layer.downsample(x)
        x = self.avgpool(self.norm(x).transpose(1, 2))
        return self.head(torch.flatten(x, 1))


def official_v2_from_config(config) -> OfficialSwinV2:
    """The reference V2 model for a swintrace SwinConfig (version 2)."""
    return OfficialSwinV2(
        img_size=config.img_size, patch_size=config.patch_size, in_chans=config.in_chans,
        num_classes=config.num_classes, embed_dim=config.embed_dim, depths=config.depths,
        num_heads=config.num_heads, window_size=config.window_size, mlp_ratio=config.mlp_ratio,
        drop_path_rate=config.drop_path_rate,
        pretrained_window_sizes=config.pretrained_window_sizes or (0,) * len(config.depths),
    )


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Weights that exercise every path: non-zero post-norms, logit scales around the clamp,
    CPB outputs of both signs. Returns ``model``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("logit_scale"):
                parameter.copy_(math.log(100.0) + noise)  # half the heads clamped
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.2 * noise)
            else:
                parameter.copy_(0.05 * noise if parameter.ndim > 1 else 0.1 * noise)
    return model
