"""The steps of Swin's forward that pictures read, and the small arrays they take.

Everything here is small and bounded: per stage the region map of the mask
(Hp x Wp ids) and the feature energy (channel L2 norm of image 0, H x W);
for the one chosen block the bias table and index, and for the chosen query
patch and head the four attention rows (N values each) of its window:
q·kᵀ·scale, + bias, + mask, softmax. For the window explorer, the softmax of a
few chosen blocks whole for image 0, 8-bit per row (``explored_attention``), at
most ``MAX_EXPLORE_BYTES`` a block. ``SwinTransformer.picture_capture`` hands
one to the recorder.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from ..config import SwinConfig
from ..errors import UserError
from ..geometry import default_query_token, padded_size, shifted_position
from ..recording.capture import PictureOptions
from ..recording.summary import Summary, SummaryBatch
from ..trace.events import Trace

_STAGE_INPUT = re.compile(r"^layers\.(\d+)\.input$")
_ROW_STEPS = ("scores", "cosine", "scale_cosine", "add_bias", "add_mask", "softmax")  # V1's scores, V2's cosines
_BLOCK_ATTENTION = re.compile(r"^(layers\.(\d+)\.blocks\.\d+)\.attn\.(bias_gather|softmax)$")
# The explorer's attention codes of one block take at most this many bytes: beyond it,
# the first windows only (then, if one window is too big, its first heads).
MAX_EXPLORE_BYTES = 1 << 20


def default_explored(config: SwinConfig) -> tuple[str, ...]:
    """The explorer's blocks: the first two (W-MSA, SW-MSA) of the first and of the last stage."""
    stages = dict.fromkeys((0, config.num_stages - 1))
    return tuple(f"layers.{stage}.blocks.{index}" for stage in stages for index in range(min(2, config.depths[stage])))


class PictureCapture:
    """Picks the whole small arrays that pictures read out of a step's values."""

    def __init__(self, options: PictureOptions, batch: SummaryBatch, trace: Trace) -> None:
        self.options = options
        self.batch = batch
        self.trace = trace
        self.stage_sizes: dict[int, tuple[int, int]] = {}  # stage -> (H, W) of its input
        self.target: tuple[int, int] | None = None  # (window, token) of the query in the chosen block
        self._explored: tuple[str, ...] | None = None

    @property
    def explored(self) -> tuple[str, ...]:
        """The blocks whose whole attention the explorer gets (recorded in the header's options)."""
        if self._explored is None:
            config = SwinConfig.from_dict(self.trace.header["model"]["config"])
            chosen = self.options.explore if self.options.explore is not None else default_explored(config)
            self._explored = tuple(dict.fromkeys(chosen))  # each block once
            recorded = self.trace.header.get("options", {}).get("pictures")
            if isinstance(recorded, dict):
                recorded["explore"] = list(self._explored)
        return self._explored

    def on_step(self, step_id: str, kind: str, values: dict[str, Any]) -> list[tuple[str, Summary]]:
        """The (name, summary) arrays this step carries for pictures (often none)."""
        block = self.options.block
        arrays: list[tuple[str, Summary]] = []
        stage_input = _STAGE_INPUT.match(step_id)
        if stage_input and isinstance(values.get("x"), torch.Tensor):
            H, W = values["H"], values["W"]
            self.stage_sizes[int(stage_input.group(1))] = (H, W)
            energy = values["x"][0].float().norm(dim=-1).reshape(H, W)  # H, W: channel L2 norm of image 0
            arrays.append(("energy", self.batch.whole(energy)))
        elif kind == "mask_regions" and isinstance(values.get("img_mask"), torch.Tensor):
            arrays.append(("regions", self.batch.whole(values["img_mask"][0, :, :, 0])))  # Hp, Wp region ids
        elif step_id == f"{block}.cyclic_shift":
            arrays.append(("query", self.batch.whole(self._locate_query(values))))
        elif step_id == f"{block}.attn.bias_gather":
            arrays.append(("table", self.batch.whole(values["relative_position_bias_table"])))
            arrays.append(("index", self.batch.whole(values["relative_position_index"])))
        elif step_id == f"{block}.attn.logit_scale":  # Swin V2: each head's factor
            arrays.append(("factors", self.batch.whole(values["logit_scale"].flatten())))  # heads
        elif step_id == f"{block}.attn.relative_coords_table.output":  # Swin V2: the MLP's log-spaced input
            arrays.append(("coords", self.batch.whole(values["relative_coords_table"][0])))  # 2M-1, 2M-1, 2
        elif step_id.startswith(f"{block}.attn.") and kind in _ROW_STEPS and self.target:
            attn = values.get("attn")
            if isinstance(attn, torch.Tensor):
                arrays.append(("row", self.batch.whole(self._row(attn))))
        explored = _BLOCK_ATTENTION.match(step_id)
        if explored and explored.group(3) == "softmax" and int(explored.group(2)) in self.stage_sizes:
            attn = values.get("attn")  # every block: its head-averaged weights, for the rollout
            if isinstance(attn, torch.Tensor) and attn.ndim == 4:
                H, W = self.stage_sizes[int(explored.group(2))]
                codes, peaks = explored_attention(attn.float().mean(dim=1, keepdim=True), H, W)
                arrays.append(("rollout_codes", self.batch.whole(codes)))  # windows kept, 1, N, N
                arrays.append(("rollout_peaks", self.batch.whole(peaks)))  # windows kept, 1, N
        if explored and explored.group(1) in self.explored:
            block_id, stage, step_name = explored.group(1), int(explored.group(2)), explored.group(3)
            table = values.get("relative_position_bias_table")
            if step_name == "bias_gather" and block_id != block and isinstance(table, torch.Tensor):
                arrays.append(("table", self.batch.whole(table)))
            attn = values.get("attn")
            if step_name == "softmax" and isinstance(attn, torch.Tensor) and stage in self.stage_sizes:
                codes, peaks = explored_attention(attn, *self.stage_sizes[stage])
                arrays.append(("explore_codes", self.batch.whole(codes)))
                arrays.append(("explore_peaks", self.batch.whole(peaks)))
        return arrays

    def on_grad(self, step_id: str, name: str) -> Any:
        """What pictures take from the gradient of a step's tensor: for the chosen block's scores,
        the query's row of every head (heads, N) — the masked keys' entries are (near) zero. None: nothing."""
        if step_id != f"{self.options.block}.attn.scores" or name != "attn" or self.target is None:
            return None
        window, token = self.target
        return lambda grad: [("grad_row", grad[window, :, token])]  # heads, N: image 0's windows come first

    def _locate_query(self, values: dict[str, Any]) -> torch.Tensor:
        """Where the query patch sits after padding and the cyclic shift.

        Returns (query y, x in pixels, token y, x, window, token in window, window size).
        """
        shift_h, shift_w = values["shift_size"]
        stage = int(self.options.block.split(".")[1])
        config = SwinConfig.from_dict(self.trace.header["model"]["config"])
        stride = config.patch_size * 2**stage
        _, _, image_h, image_w = self.trace.header["input"]["shape"]
        H, W = self.stage_sizes[stage]
        window_size = config.stage_window(stage)[0]
        Hp, Wp = padded_size(H, window_size), padded_size(W, window_size)
        rolled_h, rolled_w = config.rolled_size(stage, H, W)
        if self.options.query is None:
            token = default_query_token(H, W, Hp, Wp, window_size, shift_h, shift_w, (rolled_h, rolled_w))
            query_y = min(token[0] * stride + stride // 2, image_h - 1)
            query_x = min(token[1] * stride + stride // 2, image_w - 1)
        else:
            query_y, query_x = self.options.query
        if not (0 <= query_y < image_h and 0 <= query_x < image_w):
            raise UserError.of("query_outside", y=query_y, x=query_x, height=image_h, width=image_w)
        token_y = min(query_y // stride, H - 1)
        token_x = min(query_x // stride, W - 1)
        moved_y, moved_x = shifted_position(token_y, shift_h, rolled_h), shifted_position(token_x, shift_w, rolled_w)
        window = (moved_y // window_size) * (Wp // window_size) + moved_x // window_size
        token = (moved_y % window_size) * window_size + moved_x % window_size
        self.target = (window, token)
        return torch.tensor([query_y, query_x, token_y, token_x, window, token, window_size])

    def _row(self, attn: torch.Tensor) -> torch.Tensor:
        """The chosen query's attention row (N values) of the chosen head."""
        window, token = self.target
        heads = attn.shape[-3]
        if self.options.head >= heads:
            raise UserError.of("head_out_of_range", head=self.options.head, block=self.options.block,
                               heads=heads)
        if attn.ndim == 5:  # B, nW, heads, N, N (the mask is being added)
            return attn[0, window, self.options.head, token]
        return attn[window, self.options.head, token]  # B*nW, heads, N, N: image 0's windows come first


def explored_attention(attn: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image 0's attention weights, 8 bits per weight: (codes, peaks).

    ``attn``: the softmax (B*nW, heads, N, N), image 0's nW windows first, for a
    stage of H x W tokens. Row r of window w and head h is kept as
    ``codes[w, h, r] = round(255 * weight / peaks[w, h, r])`` with ``peaks`` the
    row's largest weight, so a weight comes back within peak / 510. Codes are
    (windows kept, heads kept, N, N) uint8; peaks (windows kept, heads kept, N)
    float32. At most MAX_EXPLORE_BYTES of codes: the first windows (row-major),
    and of a window too big alone, its first heads. No value leaves the device here.
    """
    heads, N = attn.shape[-3], attn.shape[-1]
    M = math.isqrt(N)
    windows = -(-H // M) * -(-W // M)
    kept_heads = min(heads, max(1, MAX_EXPLORE_BYTES // (N * N)))
    kept_windows = min(windows, max(1, MAX_EXPLORE_BYTES // (kept_heads * N * N)))
    kept = attn[:kept_windows, :kept_heads].float()  # windows kept, heads kept, N, N
    peaks = kept.amax(dim=-1, keepdim=True).nan_to_num(0.0)  # windows kept, heads kept, N, 1
    codes = (kept / peaks.clamp_min(1e-30)).mul(255.0).nan_to_num(0.0).round().clamp(0.0, 255.0)
    return codes.to(torch.uint8), peaks.squeeze(-1)
