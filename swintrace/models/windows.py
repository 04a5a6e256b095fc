"""Window helpers of the Swin Transformer: partition, reverse, relative positions.

The torch-free geometry (padded sizes, the shift a map gets) is in geometry.py.

``window_partition`` and ``window_reverse`` are traced functions: each call is a
scope of the walkthrough, with its own input, view, permute and output steps.
``cached_per_size`` keeps a stage's attention masks per input size.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch

from ..recording.tracing import is_tracing, step, traced_function


@traced_function
def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut a feature map into non-overlapping windows.

    x: (B, H, W, C) with H and W multiples of ``window_size`` (M).
    Returns (B * H/M * W/M, M, M, C): all windows of image 0, then of image 1, ...
    """
    step("input", x=x)
    B, H, W, C = x.shape
    x = x.view(B, H // window_size, window_size, W // window_size, window_size, C)  # B, H/M, M, W/M, M, C
    step("view", x=x)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)  # B*nW, M, M, C
    step("permute", windows=windows, rearranges=x)
    step("output", windows=windows)
    return windows


@traced_function
def window_reverse(windows: torch.Tensor, window_size: int, H: int, W: int) -> torch.Tensor:
    """Stitch windows back into a feature map: the inverse of ``window_partition``.

    windows: (B * H/M * W/M, M, M, C). Returns (B, H, W, C).
    """
    step("input", windows=windows)
    B = windows.shape[0] // ((H // window_size) * (W // window_size))
    step("batch", B=B)
    x = windows.view(B, H // window_size, W // window_size, window_size, window_size, -1)  # B, H/M, W/M, M, M, C
    step("view", x=x)
    x = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)  # B, H, W, C
    step("permute", x=x, rearranges=windows)
    step("output", x=x)
    return x


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index into the (2M-1)^2-row bias table for every (query, key) pair of a window.

    Returns (M*M, M*M) int64. Entry [i, j] encodes the offset of token i from
    token j: (dy + M - 1) * (2M - 1) + (dx + M - 1), the official convention.
    For M = 2 it is [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]].

    The model builds it once, untraced; the course shows its steps by tracing
    ``traced_function(relative_position_index)(M)``.
    """
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    )  # 2, M, M
    step("index_coords", coords=coords, window_size=window_size)
    coords_flatten = torch.flatten(coords, 1)  # 2, M*M
    step("index_flatten", coords_flatten=coords_flatten)
    relative_coords = coords_flatten[:, :, None] - coords_flatten[:, None, :]  # 2, M*M, M*M
    step("index_offsets", relative_coords=relative_coords)
    relative_coords = relative_coords.permute(1, 2, 0).contiguous()  # M*M, M*M, 2
    step("permute", relative_coords=relative_coords)
    relative_coords[:, :, 0] += window_size - 1  # rows offsets from 0 .. 2M-2
    relative_coords[:, :, 1] += window_size - 1  # column offsets from 0 .. 2M-2
    step("index_shift", relative_coords=relative_coords)
    relative_coords[:, :, 0] *= 2 * window_size - 1  # row offset selects a block of 2M-1 entries
    step("index_rows", relative_coords=relative_coords)
    relative_position_index = relative_coords.sum(-1)  # M*M, M*M
    step("output", relative_position_index=relative_position_index)
    return relative_position_index


@traced_function
def relative_coords_table(window_size: int, pretrained_window_size: int = 0) -> torch.Tensor:
    """Swin V2's input to its position-bias MLP: every offset of a window, log-spaced.

    Returns (1, 2M-1, 2M-1, 2) float32: entry [0, i, j] is the offset (dy, dx) =
    (i - (M-1), j - (M-1)), divided by M-1 (or by the pre-trained window's side
    minus one), times 8, then sign(x) * log2(|x| + 1) / log2(8). Offsets near 0
    stay apart, far ones crowd together: a larger window later adds offsets just
    past the largest the MLP saw, not far beyond it. Built once with the model,
    on the CPU as the official code does; a traced V2 forward shows its steps.
    """
    relative_coords_h = torch.arange(-(window_size - 1), window_size, dtype=torch.float32)  # 2M-1
    relative_coords_w = torch.arange(-(window_size - 1), window_size, dtype=torch.float32)  # 2M-1
    relative_coords_table = torch.stack(
        torch.meshgrid([relative_coords_h, relative_coords_w], indexing="ij")
    ).permute(1, 2, 0).contiguous().unsqueeze(0)  # 1, 2M-1, 2M-1, 2
    step("coords_offsets", relative_coords_table=relative_coords_table, window_size=window_size)
    side = pretrained_window_size if pretrained_window_size > 0 else window_size
    relative_coords_table[:, :, :, 0] /= side - 1
    relative_coords_table[:, :, :, 1] /= side - 1
    relative_coords_table *= 8  # offsets from -8 to 8
    step("coords_normalize", relative_coords_table=relative_coords_table, divisor=side - 1)
    relative_coords_table = torch.sign(relative_coords_table) * torch.log2(
        torch.abs(relative_coords_table) + 1.0) / math.log2(8)  # 1, 2M-1, 2M-1, 2 in [-1, 1]
    step("output", relative_coords_table=relative_coords_table)
    return relative_coords_table


# Masks kept per stage (one per input size, device and dtype).
_MASK_CACHE_SIZE = 16


def cached_per_size(create_mask: Callable[..., torch.Tensor | None]) -> Callable[..., torch.Tensor | None]:
    """Remember a stage's masks per (H, W, device, dtype); recompute while tracing.

    The mask depends only on those, so the cached tensor is bit-identical to a
    fresh one; under tracing it is recomputed so that its steps are recorded.
    """

    @functools.wraps(create_mask)
    def cached(self: Any, x: torch.Tensor, H: int, W: int) -> torch.Tensor | None:
        if is_tracing():
            return create_mask(self, x, H, W)
        key = (H, W, x.device, x.dtype)
        if key not in self._mask_cache:
            if len(self._mask_cache) >= _MASK_CACHE_SIZE:
                self._mask_cache.pop(next(iter(self._mask_cache)))
            self._mask_cache[key] = create_mask(self, x, H, W)
        return self._mask_cache[key]

    return cached
