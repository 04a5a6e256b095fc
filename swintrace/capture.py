"""Extra data for pictures, recorded only when pictures are asked for.

Everything here is small and bounded: per stage the region map of the mask
(Hp x Wp ids) and the feature energy (channel L2 norm of image 0, H x W);
for the one chosen block the bias table and index, and for the chosen query
patch and head the four attention rows (N values each) of its window:
q·kᵀ·scale, + bias, + mask, softmax. Never whole attention tensors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from .config import SwinConfig
from .errors import UserError
from .events import Event, Trace
from .summary import SummaryBatch

_STAGE_INPUT = re.compile(r"^layers\.(\d+)\.input$")
_ROW_STEPS = ("scores", "add_bias", "add_mask", "softmax")


@dataclass(frozen=True)
class PictureOptions:
    """Which block, head and query patch the attention pictures follow."""

    # Dotted id of the block whose attention is drawn (default: the first SW-MSA block).
    block: str = "layers.0.blocks.1"
    # Attention head drawn.
    head: int = 0
    # Query patch as (y, x) pixels of the model's input; None: the centre.
    query: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"layers\.\d+\.blocks\.\d+", self.block):
            raise UserError(f"--block must look like layers.0.blocks.1, got {self.block!r}")
        if self.head < 0:
            raise UserError(f"--head must be >= 0, got {self.head}")


class PictureCapture:
    """Adds whole small arrays to the events that pictures read."""

    def __init__(self, options: PictureOptions, batch: SummaryBatch, trace: Trace) -> None:
        self.options = options
        self.batch = batch
        self.trace = trace
        self.target: tuple[int, int] | None = None  # (window, token) of the query in the chosen block

    def on_step(self, event: Event, values: dict[str, Any]) -> None:
        block = self.options.block
        stage_input = _STAGE_INPUT.match(event.id)
        if stage_input and isinstance(values.get("x"), torch.Tensor):
            H, W = values["H"], values["W"]
            energy = values["x"][0].float().norm(dim=-1).reshape(H, W)  # H, W: channel L2 norm of image 0
            self._add(event, "energy", energy)
        elif event.kind == "mask_regions" and isinstance(values.get("img_mask"), torch.Tensor):
            self._add(event, "regions", values["img_mask"][0, :, :, 0])  # Hp, Wp region ids
        elif event.id == f"{block}.cyclic_shift":
            self._locate_query(event, values)
        elif event.id == f"{block}.attn.bias_gather":
            self._add(event, "table", values["relative_position_bias_table"])
            self._add(event, "index", values["relative_position_index"])
        elif event.id.startswith(f"{block}.attn.") and event.kind in _ROW_STEPS and self.target:
            attn = values.get("attn")
            if isinstance(attn, torch.Tensor):
                self._add_row(event, attn)

    def _locate_query(self, event: Event, values: dict[str, Any]) -> None:
        """Where the query patch sits after padding and the cyclic shift: (window, token)."""
        shifted = values["shifted_x"]  # B, Hp, Wp, C
        shift_h, shift_w = values["shift_size"]
        stage = int(self.options.block.split(".")[1])
        config = self.trace.header["model"]["config"]
        stride = config["patch_size"] * 2**stage
        _, _, image_h, image_w = self.trace.header["input"]["shape"]
        query_y, query_x = self.options.query or (image_h // 2, image_w // 2)
        if not (0 <= query_y < image_h and 0 <= query_x < image_w):
            raise UserError(f"--query {query_y},{query_x} is outside the {image_h}x{image_w} input")
        stage_input = next(e for e in reversed(self.trace.events) if e.id == f"layers.{stage}.input")
        token_y = min(query_y // stride, stage_input.scalars["H"] - 1)
        token_x = min(query_x // stride, stage_input.scalars["W"] - 1)
        Hp, Wp = shifted.shape[1], shifted.shape[2]
        window_size = SwinConfig.from_dict(config).stage_window(stage)[0]
        moved_y, moved_x = (token_y - shift_h) % Hp, (token_x - shift_w) % Wp
        window = (moved_y // window_size) * (Wp // window_size) + moved_x // window_size
        token = (moved_y % window_size) * window_size + moved_x % window_size
        self.target = (window, token)
        query = torch.tensor([query_y, query_x, token_y, token_x, window, token, window_size])
        self._add(event, "query", query)

    def _add_row(self, event: Event, attn: torch.Tensor) -> None:
        window, token = self.target
        heads = attn.shape[-3]
        if self.options.head >= heads:
            raise UserError(f"--head {self.options.head}: block {self.options.block} has {heads} heads")
        if attn.ndim == 5:  # B, nW, heads, N, N (the mask is being added)
            row = attn[0, window, self.options.head, token]
        else:  # B*nW, heads, N, N: image 0's windows come first
            row = attn[window, self.options.head, token]
        self._add(event, "row", row)

    def _add(self, event: Event, name: str, tensor: torch.Tensor) -> None:
        event.arrays.append(self.batch.whole(name, tensor))
