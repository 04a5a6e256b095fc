"""An independent, uninstrumented Swin V1 written from the official code's structure.

It follows microsoft/Swin-Transformer ``models/swin_transformer.py``: fixed input
resolution, masks registered as buffers in the blocks at construction, shift
and window decided per block by the official rule, ``Mlp.drop`` shared by both
dropouts. Its state dict has the official key names (buffers included), so it
plays the official checkpoint in tests, and it is the "plain" model that the
overhead benchmark compares against. No tracing code is imported here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def partition(x: torch.Tensor, m: int) -> torch.Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // m, m, w // m, m, c)  # B, H/M, M, W/M, M, C
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, m, m, c)  # B*nW, M, M, C


def reverse(windows: torch.Tensor, m: int, h: int, w: int) -> torch.Tensor:
    b = int(windows.shape[0] / (h * w / m / m))
    x = windows.view(b, h // m, w // m, m, m, -1)  # B, H/M, W/M, M, M, C
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)  # B, H, W, C


def official_mask(resolution: int, m: int, shift: int) -> torch.Tensor | None:
    """The official SW-MSA mask of a resolution x resolution map: (nW, M*M, M*M) of 0 and -100, or None."""
    if shift == 0:
        return None
    regions = torch.zeros((1, resolution, resolution, 1))
    cuts = (slice(0, -m), slice(-m, -shift), slice(-shift, None))
    label = 0
    for h in cuts:
        for w in cuts:
            regions[:, h, w, :] = label
            label += 1
    windows = partition(regions, m).view(-1, m * m)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class OfficialDropPath(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1 - self.p
        noise = keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise.floor_()
        return x.div(keep) * noise


class OfficialMlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class OfficialWindowAttention(nn.Module):
    def __init__(self, dim: int, m: int, heads: int) -> None:
        super().__init__()
        self.m, self.heads = m, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * m - 1) ** 2, heads))
        ys, xs = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
        flat = torch.stack([ys.flatten(), xs.flatten()])  # 2, M*M
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()  # M*M, M*M, 2
        rel[:, :, 0] += m - 1
        rel[:, :, 1] += m - 1
        rel[:, :, 0] *= 2 * m - 1
        self.register_buffer("relative_position_index", rel.sum(-1))
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b_, n, c = x.shape
        qkv = self.qkv(x).reshape(b_, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(b_, n, c)
        return self.proj_drop(self.proj(x))


class OfficialBlock(nn.Module):
    def __init__(self, dim: int, resolution: int, heads: int, m: int, shift: int, mlp_ratio: float,
                 drop_path: float) -> None:
        super().__init__()
        self.resolution = resolution
        if resolution <= m:  # the official rule
            shift, m = 0, resolution
        self.m, self.shift = m, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = OfficialWindowAttention(dim, m, heads)
        self.drop_path = OfficialDropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = OfficialMlp(dim, int(dim * mlp_ratio), 0.0)
        self.register_buffer("attn_mask", official_mask(resolution, m, shift))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, r, r, c)
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = partition(x, self.m).view(-1, self.m * self.m, c)
        windows = self.attn(windows, self.attn_mask).view(-1, self.m, self.m, c)
        x = reverse(windows, self.m, r, r)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + self.drop_path(x.view(b, r * r, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OfficialMerging(nn.Module):
    def __init__(self, resolution: int, dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        b, _, c = x.shape
        x = x.view(b, r, r, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class OfficialLayer(nn.Module):
    def __init__(self, dim: int, resolution: int, depth: int, heads: int, m: int, mlp_ratio: float,
                 rates: list[float], last: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            OfficialBlock(dim, resolution, heads, m, 0 if i % 2 == 0 else m // 2, mlp_ratio, rates[i])
            for i in range(depth)
        )
        self.downsample = None if last else OfficialMerging(resolution, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class OfficialPatchEmbed(nn.Module):
    def __init__(self, patch: int, chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class OfficialSwin(nn.Module):
    """Swin V1 at a fixed square resolution, with official key names."""

    def __init__(self, img_size: int = 224, patch_size: int = 4, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 96, depths=(2, 2, 6, 2),
                 num_heads=(3, 6, 12, 24), window_size: int = 7, mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.2) -> None:
        super().__init__()
        self.patch_embed = OfficialPatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_drop = nn.Dropout(0.0)
        rates = [r.item() for r in torch.linspace(0, drop_path_rate, sum(depths))]
        resolution = img_size // patch_size
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            start = sum(depths[:i])
            self.layers.append(OfficialLayer(
                embed_dim * 2**i, resolution // 2**i, depth, num_heads[i], window_size, mlp_ratio,
                rates[start:start + depth], last=i == len(depths) - 1,
            ))
        features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(features)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_drop(self.patch_embed(x))
        for layer in self.layers:
            x = layer(x)
        x = self.avgpool(self.norm(x).transpose(1, 2))
        return self.head(torch.flatten(x, 1))


def official_from_config(config) -> OfficialSwin:
    """The reference model for a swintrace SwinConfig."""
    return OfficialSwin(
        img_size=config.img_size, patch_size=config.patch_size, in_chans=config.in_chans,
        num_classes=config.num_classes, embed_dim=config.embed_dim, depths=config.depths,
        num_heads=config.num_heads, window_size=config.window_size, mlp_ratio=config.mlp_ratio,
        drop_path_rate=config.drop_path_rate,
    )


def torchvision_style_attention_block(x: torch.Tensor, block, m: int, shift: int) -> torch.Tensor:
    """Window attention of one block on a (B, H, W, C) map, torchvision's way, for any H, W.

    Pads right/bottom to multiples of M, shifts only along axes longer than one
    window, builds the mask on the padded map, crops back. ``block`` supplies the
    weights (any module with ``attn`` holding qkv/proj/bias table). Returns (B, H, W, C).
    """
    b, h, w, c = x.shape
    pad_r, pad_b = (m - w % m) % m, (m - h % m) % m
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    hp, wp = x.shape[1], x.shape[2]
    sh = shift if hp > m else 0
    sw = shift if wp > m else 0
    if sh or sw:
        x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
    windows = partition(x, m).view(-1, m * m, c)
    mask = None
    if sh or sw:
        regions = x.new_zeros((hp, wp))
        label = 0
        for hs in ((0, -m), (-m, -sh), (-sh, None)):
            for ws in ((0, -m), (-m, -sw), (-sw, None)):
                regions[hs[0]:hs[1], ws[0]:ws[1]] = label
                label += 1
        regions = regions.view(hp // m, m, wp // m, m).permute(0, 2, 1, 3).reshape(-1, m * m)
        mask = regions.unsqueeze(1) - regions.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
    attn = block.attn
    heads = attn.num_heads
    qkv = attn.qkv(windows).reshape(windows.shape[0], m * m, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    scores = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
    bias = attn.relative_position_bias_table[attn.relative_position_index.view(-1)].view(m * m, m * m, -1)
    scores = scores + bias.permute(2, 0, 1).unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        scores = scores.view(-1, nw, heads, m * m, m * m) + mask.unsqueeze(1).unsqueeze(0)
        scores = scores.view(-1, heads, m * m, m * m)
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(-1, m * m, c)
    out = attn.proj(out).view(-1, m, m, c)
    out = reverse(out, m, hp, wp)
    if sh or sw:
        out = torch.roll(out, shifts=(sh, sw), dims=(1, 2))
    return out[:, :h, :w, :].contiguous()


def torchvision_forward(state: dict, config, images: torch.Tensor) -> torch.Tensor:
    """Swin V1 logits computed functionally from a torchvision-layout state dict.

    Follows torchvision's SwinTransformer: conv embed (no padding), NHWC
    throughout, blocks x + attn(norm1(x)) and x + mlp(norm2(x)) with
    ``torchvision_style_attention_block``, patch merging that pads odd sizes,
    final norm, mean over H and W, head.
    """

    class _Attn:  # the attribute shape torchvision_style_attention_block reads
        def __init__(self, prefix: str, heads: int) -> None:
            self.num_heads = heads
            self.relative_position_bias_table = state[prefix + "relative_position_bias_table"]
            m = int(((self.relative_position_bias_table.shape[0]) ** 0.5 + 1) // 2)
            ys, xs = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
            flat = torch.stack([ys.flatten(), xs.flatten()])
            rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
            rel[:, :, 0] += m - 1
            rel[:, :, 1] += m - 1
            rel[:, :, 0] *= 2 * m - 1
            self.relative_position_index = rel.sum(-1)
            self.qkv = lambda t: F.linear(t, state[prefix + "qkv.weight"], state[prefix + "qkv.bias"])
            self.proj = lambda t: F.linear(t, state[prefix + "proj.weight"], state[prefix + "proj.bias"])

    class _Block:
        def __init__(self, prefix: str, heads: int) -> None:
            self.attn = _Attn(prefix + "attn.", heads)

    def norm(t, prefix):
        return F.layer_norm(t, t.shape[-1:], state[prefix + "weight"], state[prefix + "bias"])

    x = F.conv2d(images, state["features.0.0.weight"], state["features.0.0.bias"], stride=config.patch_size)
    x = norm(x.permute(0, 2, 3, 1), "features.0.2.")  # B, H, W, C
    m = config.window_size
    for stage, depth in enumerate(config.depths):
        index = 2 * stage + 1
        for block in range(depth):
            prefix = f"features.{index}.{block}."
            shift = 0 if block % 2 == 0 else m // 2
            x = x + torchvision_style_attention_block(
                norm(x, prefix + "norm1."), _Block(prefix, config.num_heads[stage]), m, shift)
            hidden = F.gelu(F.linear(norm(x, prefix + "norm2."), state[prefix + "mlp.0.weight"], state[prefix + "mlp.0.bias"]))
            x = x + F.linear(hidden, state[prefix + "mlp.3.weight"], state[prefix + "mlp.3.bias"])
        if stage < len(config.depths) - 1:
            prefix = f"features.{index + 1}."
            h, w = x.shape[1], x.shape[2]
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
            x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
            x = F.linear(norm(x, prefix + "norm."), state[prefix + "reduction.weight"])
    x = norm(x, "norm.").mean(dim=(1, 2))
    return F.linear(x, state["head.weight"], state["head.bias"])
