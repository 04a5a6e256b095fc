"""Parameters and FLOPs per stage, counted the way the official ``flops()`` methods count.

FLOPs here are multiply-accumulates, as in the official code and the paper
(Swin-T: 4.5 G at 224x224). Counts use the padded map each block really runs on.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SwinConfig
from .geometry import padded_size


@dataclass(frozen=True)
class StageRow:
    """One stage of the summary table."""

    stage: int
    H: int
    W: int
    tokens: int
    channels: int
    window: int
    windows: int
    heads: int
    blocks: int
    parameters: int
    flops: int


def block_parameters(dim: int, heads: int, window: int, mlp_ratio: float, qkv_bias: bool) -> int:
    hidden = int(dim * mlp_ratio)
    attention = (2 * window - 1) ** 2 * heads + dim * 3 * dim + (3 * dim if qkv_bias else 0) + dim * dim + dim
    mlp = dim * hidden + hidden + hidden * dim + dim
    return 2 * dim + attention + 2 * dim + mlp


def block_flops(dim: int, heads: int, window: int, mlp_ratio: float, H: int, W: int) -> int:
    Hp, Wp = padded_size(H, window), padded_size(W, window)
    tokens_per_window = window * window
    windows = (Hp // window) * (Wp // window)
    per_window = (
        tokens_per_window * dim * 3 * dim  # qkv
        + 2 * tokens_per_window * tokens_per_window * dim  # q @ k^T and attn @ v, all heads
        + tokens_per_window * dim * dim  # proj
    )
    hidden = int(dim * mlp_ratio)
    return H * W * dim + windows * per_window + 2 * H * W * dim * hidden + H * W * dim


def stage_rows(config: SwinConfig, sizes: list[tuple[int, int]]) -> list[StageRow]:
    """Rows for stages whose input (H, W) in tokens are ``sizes`` (from a trace)."""
    rows = []
    for stage, (H, W) in enumerate(sizes):
        dim = config.embed_dim * 2**stage
        heads = config.num_heads[stage]
        window, _ = config.stage_window(stage)
        depth = config.depths[stage]
        parameters = depth * block_parameters(dim, heads, window, config.mlp_ratio, config.qkv_bias)
        flops = depth * block_flops(dim, heads, window, config.mlp_ratio, H, W)
        if stage < config.num_stages - 1:  # patch merging closes the stage
            parameters += 2 * 4 * dim + 4 * dim * 2 * dim
            flops += H * W * dim + ((H + 1) // 2) * ((W + 1) // 2) * 4 * dim * 2 * dim
        windows = (padded_size(H, window) // window) * (padded_size(W, window) // window)
        rows.append(StageRow(stage, H, W, H * W, dim, window, windows, heads, depth, parameters, flops))
    return rows


def total_flops(config: SwinConfig, image_h: int, image_w: int) -> int:
    """MACs of a whole forward for one image: embedding, stages, final norm, head."""
    H, W = -(-image_h // config.patch_size), -(-image_w // config.patch_size)
    embed = H * W * config.embed_dim * config.in_chans * config.patch_size**2
    embed += H * W * config.embed_dim if config.patch_norm else 0
    sizes = []
    for _ in range(config.num_stages):
        sizes.append((H, W))
        H, W = (H + 1) // 2, (W + 1) // 2
    stages = sum(row.flops for row in stage_rows(config, sizes))
    last_h, last_w = sizes[-1]
    return embed + stages + config.num_features * last_h * last_w + config.num_features * config.num_classes
