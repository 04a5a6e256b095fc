"""What the user asks pictures to follow: a block, a head and a query patch.

The steps that pictures read, and what they take from each, belong to the
model (picture_steps.py): the recorder only hands its forward's steps to the
model's ``picture_capture``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class PictureOptions:
    """Which block, head and query patch the attention pictures follow."""

    # Dotted id of the block whose attention is drawn (default: the first SW-MSA block).
    block: str = "layers.0.blocks.1"
    # Attention head drawn.
    head: int = 0
    # Query patch as (y, x) pixels of the model's input; None: in a shifted block, a patch
    # of the bottom-right window, which the mask splits; in an unshifted one, the centre.
    query: tuple[int, int] | None = None
    # Blocks whose whole attention (image 0, quantized) the window explorer gets; None: the
    # first two blocks of the first and of the last stage (a W-MSA and an SW-MSA block each).
    explore: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"layers\.\d+\.blocks\.\d+", self.block):
            raise UserError.of("block_format", block=repr(self.block))
        if self.head < 0:
            raise UserError.of("head_negative", head=self.head)
        for block in self.explore or ():
            if not isinstance(block, str) or not re.fullmatch(r"layers\.\d+\.blocks\.\d+", block):
                raise UserError.of("block_format", block=repr(block))
