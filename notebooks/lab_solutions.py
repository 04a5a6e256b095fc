"""Solutions of notebooks/lab.ipynb: one way to write each piece (try the lab before reading them).

tests/test_lab.py checks each with ``swintrace.check`` and runs the notebook with them filled in.
"""

from __future__ import annotations

import torch


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """x (B, H, W, C) -> windows (B * H/M * W/M, M, M, C), row by row over the map, image after image."""
    B, H, W, C = x.shape
    M = window_size
    x = x.view(B, H // M, M, W // M, M, C)  # B, window row, row in window, window column, column in window, C
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, M, M, C)  # B*nW, M, M, C


def window_reverse(windows: torch.Tensor, window_size: int, H: int, W: int) -> torch.Tensor:
    """windows (B * H/M * W/M, M, M, C) -> the map (B, H, W, C): window_partition undone."""
    M = window_size
    B = windows.shape[0] // ((H // M) * (W // M))
    x = windows.view(B, H // M, W // M, M, M, -1)  # B, window row, window column, M, M, C
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, -1)  # B, H, W, C


def relative_position_index(window_size: int) -> torch.Tensor:
    """(M*M, M*M): for query i and key j, the row of the (2M-1)^2-row bias table of their offset."""
    M = window_size
    rows, columns = torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij")  # M, M each
    rows, columns = rows.flatten(), columns.flatten()  # M*M: each token's row and column
    dy = rows[:, None] - rows[None, :] + M - 1  # M*M, M*M: query row - key row, from 0 to 2M-2
    dx = columns[:, None] - columns[None, :] + M - 1  # M*M, M*M
    return dy * (2 * M - 1) + dx


def shift_and_mask(x: torch.Tensor, window_size: int, shift_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (B, Hp, Wp, C) -> (x rolled by -s along H and W, region ids (Hp, Wp), mask (nW, M*M, M*M) of 0 and -100)."""
    M, s = window_size, shift_size
    shifted = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
    _, Hp, Wp, _ = x.shape
    regions = torch.zeros(Hp, Wp)
    bands = (slice(0, -M), slice(-M, -s), slice(-s, None))  # after the roll: untouched, from the edge, wrapped
    for number, (h, w) in enumerate((h, w) for h in bands for w in bands):
        regions[h, w] = number
    windows = regions.view(Hp // M, M, Wp // M, M).permute(0, 2, 1, 3).reshape(-1, M * M)  # nW, M*M
    different = windows[:, None, :] != windows[:, :, None]  # nW, M*M, M*M: query i, key j
    return shifted, regions, torch.zeros(different.shape).masked_fill(different, -100.0)


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                     mask: torch.Tensor | None) -> torch.Tensor:
    """q, k, v (B*nW, heads, N, d), bias (heads, N, N), mask (nW, N, N) or None -> weights (B*nW, heads, N, N)."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1) + bias  # B*nW, heads, N, N
    if mask is not None:
        nW, N = mask.shape[0], scores.shape[-1]
        scores = scores.view(-1, nW, scores.shape[1], N, N) + mask[None, :, None]  # B, nW, heads, N, N
        scores = scores.view(-1, scores.shape[2], N, N)  # B*nW, heads, N, N
    return scores.softmax(dim=-1)
