"""How far a token has seen: exact reach and attention rollout through windows, shifts and merges.

The reference the pictures, the course and the tests use (the explorer's script computes the
same from the same geometry). Both follow the model's own geometry, block by block:

* a block pads its map to a multiple of M (padded tokens hold nothing of the image), rolls it by
  the runtime shift in an SW-MSA block (rolls, then pads, in timm's order: ``SwinConfig.shift_order``),
  and lets each token take in the tokens of its window
  whose region id (``create_mask``'s ``img_mask``) equals its own; it rolls back and crops;
* patch merging makes one token of each 2x2 group (padded first when a side is odd): a merged
  token has heard what its parents heard.

**Reach** is exact: the set of input patches whose values can have reached a token. **Rollout**
(Abnar & Zuidema) multiplies, block after block, the head-averaged attention of image 0 mixed
with the residual, ½A + ½I, rows renormalised over the real (unpadded) tokens; a merged token's
row is the mean of its real parents' rows. It is a heuristic for where information came from,
not a measure of contribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import SwinConfig
from ..geometry import padded_size

# Reach and rollout go back through every block for every block: on maps of at most this many
# tokens in stage 1 (Swin-T at 224 has 3,136; a 384 model 9,216). Larger inputs get neither
# the picture nor the explorer's strip, so that a huge input cannot make a report take minutes.
MAX_SPREAD_TOKENS = 128 * 128
# ... and at most this many token visits in all: each block goes back through every block before it
# (Swin-T at 224: 3,136 tokens x 78 block passes; a crafted depth of 96 would be 4,656 passes).
MAX_SPREAD_VISITS = 8_000_000


def spread_affordable(config: SwinConfig, sizes: list[tuple[int, int]]) -> bool:
    """Whether reach and rollout of this geometry stay within the bounds above."""
    tokens, blocks = sizes[0][0] * sizes[0][1], sum(config.depths)
    return tokens <= MAX_SPREAD_TOKENS and tokens * blocks * (blocks + 1) // 2 <= MAX_SPREAD_VISITS


@dataclass(frozen=True)
class BlockPlan:
    """The geometry of one block of a traced forward."""

    block_id: str  # "layers.0.blocks.1"
    stage: int
    H: int
    W: int
    M: int
    shift: tuple[int, int]  # the roll of an SW-MSA block ((0, 0) for W-MSA)
    rolled: tuple[int, int]  # what the roll turns: the padded map, or the map itself (SwinConfig.rolled_size)

    @property
    def padded(self) -> tuple[int, int]:
        return padded_size(self.H, self.M), padded_size(self.W, self.M)


def block_plans(config: SwinConfig, sizes: list[tuple[int, int]]) -> list[BlockPlan]:
    """Every block in order, with its stage's map (``sizes``: (H, W) of each stage's input)."""
    plans = []
    for stage, (H, W) in enumerate(sizes):
        window = config.stage_window(stage)[0]
        shift = config.stage_shift(stage, padded_size(H, window), padded_size(W, window))
        for index in range(config.depths[stage]):
            plans.append(BlockPlan(f"layers.{stage}.blocks.{index}", stage, H, W, window,
                                   shift if index % 2 == 1 else (0, 0), config.rolled_size(stage, H, W)))
    return plans


def regions(plan: BlockPlan) -> np.ndarray:
    """The model's region ids of the shifted, padded map (Hp, Wp), as ``create_mask`` writes them."""
    Hp, Wp = plan.padded
    ids = np.zeros((Hp, Wp), dtype=np.int64)  # Hp, Wp
    if plan.shift == (0, 0):
        return ids
    M, (shift_h, shift_w) = plan.M, plan.shift
    region = 0
    for rows in (slice(0, -M), slice(-M, -shift_h), slice(-shift_h, None)):
        for columns in (slice(0, -M), slice(-M, -shift_w), slice(-shift_w, None)):
            ids[rows, columns] = region
            region += 1
    return ids


def _by_window(grid: np.ndarray, M: int) -> np.ndarray:
    """(Hp, Wp) -> (nW, M*M): each window of the map, in the model's order (row-major windows, each
    row-major), as ``window_partition`` cuts it."""
    Hp, Wp = grid.shape
    return grid.reshape(Hp // M, M, Wp // M, M).transpose(0, 2, 1, 3).reshape(-1, M * M)  # nW, N


def _window_tokens(plan: BlockPlan) -> np.ndarray:
    """(nW, N): for each window of the shifted padded map, the flat indices of its tokens in the
    unshifted padded map (row-major), so that a roll is only a renumbering."""
    Hp, Wp = plan.padded
    rows = _unshifted(Hp, plan.shift[0], plan.rolled[0])  # shifted row r holds original row rows[r]
    columns = _unshifted(Wp, plan.shift[1], plan.rolled[1])
    return _by_window(rows[:, None] * Wp + columns[None, :], plan.M)  # nW, N


def _unshifted(length: int, shift: int, rolled: int) -> np.ndarray:
    """``geometry.unshifted_position`` of every position: (r + shift) mod rolled, padding after the roll staying."""
    positions = np.arange(length)
    return np.where(positions < rolled, (positions + shift) % rolled, positions)


def _through_block(plan: BlockPlan, weights: np.ndarray, attention: np.ndarray | None) -> np.ndarray:
    """One block backwards: ``weights`` over the stage's tokens (H*W,) after the block -> before it.

    Reach (``attention`` None): a token before the block counts when a token that counts after it
    shares its window and its region. Rollout: the weights go back through ½A + ½I of each window,
    rows renormalised over the real tokens (padding carries nothing). The windows partition the
    padded map, so every window is computed at once and each token is written once."""
    Hp, Wp = plan.padded
    padded = np.zeros((Hp, Wp))  # Hp, Wp
    padded[:plan.H, :plan.W] = weights.reshape(plan.H, plan.W)
    real = np.zeros((Hp, Wp), dtype=bool)
    real[:plan.H, :plan.W] = True
    flat, real = padded.reshape(-1), real.reshape(-1)  # Hp*Wp
    tokens = _window_tokens(plan)  # nW, N
    active = np.flatnonzero(flat[tokens].any(axis=1))  # the windows anything reaches: the others give 0
    tokens = tokens[active]  # nA, N
    after, inside = flat[tokens], real[tokens]  # nA, N each
    before = np.zeros_like(flat)
    if attention is None:
        ids = _by_window(regions(plan), plan.M)[active]  # nA, N: region of each token, in the shifted window's order
        open_pairs = (ids[:, :, None] == ids[:, None, :]) & inside[:, None, :]  # nA, N, N
        before[tokens] = (after[:, :, None] * open_pairs).max(axis=1)  # nA, N
    else:
        N = tokens.shape[1]
        mix = (0.5 * attention[active].astype(np.float64) + 0.5 * np.eye(N)) * inside[:, None, :]  # nA, N, N
        mix = mix / np.maximum(mix.sum(axis=2, keepdims=True), 1e-30)
        before[tokens] = np.matmul(after[:, None, :], mix)[:, 0, :]  # nA, N
    return before.reshape(Hp, Wp)[:plan.H, :plan.W].reshape(-1)  # H*W


def _through_merge(weights: np.ndarray, H: int, W: int, mean: bool) -> np.ndarray:
    """Patch merging backwards: (ceil(H/2)*ceil(W/2),) -> (H*W,): each parent gets its merged token's
    weight (reach), or its share among the merged token's real parents (rollout)."""
    Hm, Wm = -(-H // 2), -(-W // 2)
    merged = weights.reshape(Hm, Wm)
    if mean:
        real = np.zeros((2 * Hm, 2 * Wm))
        real[:H, :W] = 1.0
        merged = merged / real.reshape(Hm, 2, Wm, 2).sum(axis=(1, 3))
    parents = np.repeat(np.repeat(merged, 2, axis=0), 2, axis=1)  # 2Hm, 2Wm
    return parents[:H, :W].reshape(-1)  # H*W


def _backwards(config: SwinConfig, sizes: list[tuple[int, int]], y: int, x: int,
               attention: dict[str, np.ndarray] | None) -> list[tuple[str, np.ndarray]]:
    plans = block_plans(config, sizes)
    found = []
    for last, plan in enumerate(plans):
        if attention is not None and plan.block_id not in attention:
            break
        H, W = sizes[plan.stage]
        weights = np.zeros(H * W)
        weights[min(y >> plan.stage, H - 1) * W + min(x >> plan.stage, W - 1)] = 1.0  # the patch's token
        for back in range(last, -1, -1):
            step = plans[back]
            if step.stage != plans[min(back + 1, last)].stage and back < last:
                H, W = sizes[step.stage]
                weights = _through_merge(weights, H, W, mean=attention is not None)
            weights = _through_block(step, weights, None if attention is None else attention[step.block_id])
        H0, W0 = sizes[0]
        found.append((plan.block_id, weights.reshape(H0, W0)))
    return found


def reach(config: SwinConfig, sizes: list[tuple[int, int]], y: int, x: int) -> list[tuple[str, np.ndarray]]:
    """(block id, reach) after every block: the (H0, W0) bool map of the input patches whose values
    can have reached the token holding patch (y, x) by the end of that block."""
    return [(block_id, weights > 0) for block_id, weights in _backwards(config, sizes, y, x, None)]


def rollout(config: SwinConfig, sizes: list[tuple[int, int]], attention: dict[str, np.ndarray],
            y: int, x: int) -> list[tuple[str, np.ndarray]]:
    """(block id, rollout) after every block whose head-averaged attention of image 0 is given
    (``attention[block_id]``: (nW, N, N), the shifted windows in the model's order), up to the first
    without it: the (H0, W0) weights of the input patches in the token of patch (y, x), summing to 1."""
    return _backwards(config, sizes, y, x, attention)
