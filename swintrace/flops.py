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


# Width of Swin V2's position-bias MLP (2 -> 512 -> heads).
CPB_HIDDEN = 512


def block_parameters(dim: int, heads: int, window: int, mlp_ratio: float, qkv_bias: bool, version: int = 1) -> int:
    """A block's parameters. V1: the bias table and a q/k/v bias; V2: a logit scale per head, the
    position-bias MLP and q and v biases only."""
    hidden = int(dim * mlp_ratio)
    if version == 2:
        position = heads + 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads
        attention = position + dim * 3 * dim + (2 * dim if qkv_bias else 0) + dim * dim + dim
    else:
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
    """Rows for stages whose input (H, W) in tokens are ``sizes`` (from a trace); a stage's
    parameters and FLOPs are its blocks' (its patch merging has a row of its own in ``cost_rows``)."""
    rows = []
    for stage, (H, W) in enumerate(sizes):
        dim = config.embed_dim * 2**stage
        heads = config.num_heads[stage]
        window, _ = config.stage_window(stage)
        depth = config.depths[stage]
        parameters = depth * block_parameters(dim, heads, window, config.mlp_ratio, config.qkv_bias, config.version)
        flops = depth * block_flops(dim, heads, window, config.mlp_ratio, H, W)
        windows = (padded_size(H, window) // window) * (padded_size(W, window) // window)
        rows.append(StageRow(stage, H, W, H * W, dim, window, windows, heads, depth, parameters, flops))
    return rows


@dataclass(frozen=True)
class CostRow:
    """One row of the cost table: a part of the network, its parameters and FLOPs."""

    part: str  # "embedding", "blocks", "merging" or "head" (the final LayerNorm, pooling and linear head)
    stage: int | None  # the stage a row of blocks or a patch merging belongs to
    H: int  # the part's input map, in tokens
    W: int
    channels: int  # its output channels
    parameters: int
    flops: int
    blocks: StageRow | None = None  # the stage's geometry, for a row of blocks


def cost_rows(config: SwinConfig, sizes: list[tuple[int, int]]) -> list[CostRow]:
    """Every part of the network in order, for stages whose inputs (H, W) are ``sizes``:
    the embedding, each stage's blocks and patch merging, the head. Parameters add up to
    the model's; FLOPs to ``total_flops``."""
    H0, W0 = sizes[0]
    dim0 = config.embed_dim
    rows = [CostRow(
        "embedding", None, H0 * config.patch_size, W0 * config.patch_size, dim0,
        config.in_chans * config.patch_size**2 * dim0 + dim0 + (2 * dim0 if config.patch_norm else 0),
        H0 * W0 * dim0 * config.in_chans * config.patch_size**2 + (H0 * W0 * dim0 if config.patch_norm else 0),
    )]
    for stage_row in stage_rows(config, sizes):
        H, W, dim = stage_row.H, stage_row.W, stage_row.channels
        rows.append(CostRow("blocks", stage_row.stage, H, W, dim, stage_row.parameters, stage_row.flops, stage_row))
        if stage_row.stage < config.num_stages - 1:
            merged = ((H + 1) // 2) * ((W + 1) // 2)
            # V1 normalises the 4C gathered channels before the reduction, V2 the 2C after it.
            norm = (2 * 2 * dim, merged * 2 * dim) if config.version == 2 else (2 * 4 * dim, H * W * dim)
            rows.append(CostRow(
                "merging", stage_row.stage, H, W, 2 * dim,
                norm[0] + 4 * dim * 2 * dim, norm[1] + merged * 4 * dim * 2 * dim,
            ))
    last_h, last_w = sizes[-1]
    features = config.num_features
    rows.append(CostRow(
        "head", None, last_h, last_w, config.num_classes,
        2 * features + features * config.num_classes + config.num_classes,
        features * last_h * last_w + features * config.num_classes,
    ))
    return rows


def stage_sizes(config: SwinConfig, image_h: int, image_w: int) -> list[tuple[int, int]]:
    """Each stage's input (H, W) in tokens for an image of ``image_h`` x ``image_w`` pixels."""
    H, W = -(-image_h // config.patch_size), -(-image_w // config.patch_size)
    sizes = []
    for _ in range(config.num_stages):
        sizes.append((H, W))
        H, W = (H + 1) // 2, (W + 1) // 2
    return sizes


def total_flops(config: SwinConfig, image_h: int, image_w: int) -> int:
    """MACs of a whole forward for one image: embedding, stages, final norm, head."""
    return sum(row.flops for row in cost_rows(config, stage_sizes(config, image_h, image_w)))


def count_text(value: float) -> str:
    """A count in K, M or G units with three significant digits ("4.49 G", "26.4 K"); small ones whole."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:#.3g}".rstrip(".") + f" {unit}"
    return f"{value:g}"
