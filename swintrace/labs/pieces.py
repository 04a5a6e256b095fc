"""The five pieces of Swin a learner writes, each checked against one step of a traced model.

=========================  ===========================================  ==========================================
piece (step id checked)    the learner's function receives              and returns
=========================  ===========================================  ==========================================
``window_partition``       ``x`` (B, H, W, C), ``window_size`` M         windows (B*nW, M, M, C), row by row
(``….window_partition``)
``window_reverse``         ``windows`` (B*nW, M, M, C), M, ``H``, ``W``   the map (B, H, W, C)
(``….window_reverse``)
relative position index    ``window_size`` M                            (M*M, M*M) integers into the
(``….attn.bias_gather``)                                                (2M-1)^2-row bias table
cyclic shift and its mask  ``x`` (B, Hp, Wp, C), M, ``shift_size`` s     the map rolled by -s along H and W,
(``….cyclic_shift``)                                                    region ids (Hp, Wp), and the mask
                                                                        (nW, M*M, M*M) of 0 and -100
one window attention       ``q``, ``k``, ``v`` (B*nW, heads, N, d), the   the softmax weights
(``….attn.softmax``)       bias (heads, N, N), the mask (nW, N, N) or    (B*nW, heads, N, N)
                           None
=========================  ===========================================  ==========================================

Each piece knows the steps it can be checked at, what to capture there, the
inputs and the reference the traced model gave, and the mistakes that can be
tried against them: functions of the same inputs that a wrong implementation
would compute. ``judge.py`` tries them; nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import ROLL_THEN_PAD
from ..errors import UserError
from ..trace.events import Trace

# A wrong implementation: (diagnosis key, index of the output it explains, that output as the mistake computes it).
Mistake = tuple[str, int, Callable[[], torch.Tensor]]


@dataclass
class Output:
    """One result the learner's function returns, as the traced model computed it."""

    name: str
    reference: torch.Tensor
    dims: tuple[str, ...]  # a catalog word per dimension (labs.dims.<word>)
    grid: tuple[int, int, int] | None = None  # (B, nH, nW) when dimension 0 runs over windows row by row
    roll_axes: tuple[int, ...] = ()  # axes along which a roll of the reference is tried
    roll_limit: int = 0  # rolls tried: -roll_limit..roll_limit along each axis
    relabel: bool = False  # region ids: right whatever their numbering, as long as equal ids stay equal


@dataclass
class Case:
    """A piece at one step: the arguments its function gets, the outputs it must return, the mistakes to try."""

    piece: str
    step: str
    arguments: tuple[Any, ...]
    outputs: list[Output]
    mistakes: list[Mistake] = field(default_factory=list)


@dataclass(frozen=True)
class Piece:
    name: str  # the function's name in the lab
    pattern: re.Pattern[str]  # the step ids it is checked at
    example: str  # a step id of swin_teach to check it at
    captures: Callable[[str], list[str]]  # what tracing(capture=...) needs for a step
    case: Callable[[Trace, torch.nn.Module, str], Case]


def _window_partition(trace: Trace, model: torch.nn.Module, step: str) -> Case:
    x, windows = _tensor(trace, step + ".input", "x"), _tensor(trace, step + ".output", "windows")
    B, H, W, C = x.shape
    M = windows.shape[1]
    return Case("window_partition", step, (x, M), [
        Output("windows", windows, ("windows", "rows", "columns", "channels"), grid=(B, H // M, W // M))],
        [("no_permute", 0, lambda: x.reshape(-1, M, M, C))])  # B*H*W/M², M, M, C: M*M consecutive tokens of a row


def _window_reverse(trace: Trace, model: torch.nn.Module, step: str) -> Case:
    windows, x = _tensor(trace, step + ".input", "windows"), _tensor(trace, step + ".output", "x")
    B, H, W, C = x.shape
    M = windows.shape[1]
    return Case("window_reverse", step, (windows, M, H, W), [
        Output("x", x, ("images", "rows", "columns", "channels"))],
        [("no_permute", 0, lambda: windows.reshape(B, H, W, C))])  # B, H, W, C: windows laid out as rows


def _index(trace: Trace, model: torch.nn.Module, step: str) -> Case:
    index = _tensor(trace, step, "relative_position_index")
    M = model.get_submodule(step.rsplit(".", 1)[0]).window_size
    offsets = _offsets(M)  # 2, N, N: query minus key, rows then columns
    dy, dx = offsets
    return Case("relative_position_index", step, (M,), [Output("relative_position_index", index, ("queries", "keys"))], [
        ("index_transposed", 0, lambda: (-dy + M - 1) * (2 * M - 1) + (-dx + M - 1)),
        ("index_no_shift", 0, lambda: dy * (2 * M - 1) + dx),
        ("index_stride", 0, lambda: (dy + M - 1) * M + (dx + M - 1)),
        ("index_axes", 0, lambda: (dx + M - 1) * (2 * M - 1) + (dy + M - 1)),
    ])


def _offsets(M: int) -> torch.Tensor:
    """(2, M*M, M*M): row and column offset of query i from key j."""
    coords = torch.stack(torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij")).flatten(1)  # 2, M*M
    return coords[:, :, None] - coords[:, None, :]  # 2, M*M, M*M


def _shift(trace: Trace, model: torch.nn.Module, step: str) -> Case:
    block = step.rsplit(".", 1)[0]
    stage = block.rsplit(".", 2)[0]
    try:
        shift_h, shift_w = trace[step].scalars.get("shift_size", [0, 0])
    except KeyError:
        raise UserError.of("check_not_traced", step=step) from None
    if not shift_h or shift_h != shift_w:
        shifting = [e.id for e in trace.steps(kind="cyclic_shift") if e.note is None][:1] or ["layers.0.blocks.1.cyclic_shift"]
        raise UserError.of("check_no_shift", step=step, example=shifting[0])
    captured = trace.captured
    if getattr(model, "config", None) is not None and model.config.shift_order == ROLL_THEN_PAD \
            and f"{block}.window_pad/x" in captured:  # timm's order padded after the roll: not this piece's
        raise UserError.of("check_timm_order", step=step)
    x = captured.get(f"{block}.window_pad/x", captured.get(f"{block}.view/x"))
    shifted = _tensor(trace, step, "shifted_x")
    regions = _tensor(trace, f"{stage}.create_mask.mask_regions", "img_mask")[0, :, :, 0]  # Hp, Wp
    mask = _tensor(trace, f"{stage}.create_mask.mask_fill", "attn_mask")
    M, s = model.get_submodule(block).window_size, shift_h
    B, Hp, Wp, _ = x.shape
    return Case("shift_and_mask", step, (x, M, s), [
        Output("shifted_x", shifted, ("images", "rows", "columns", "channels"), roll_axes=(1, 2), roll_limit=2 * s),
        Output("regions", regions, ("rows", "columns"), relabel=True),
        Output("mask", mask, ("windows", "queries", "keys"), grid=(1, Hp // M, Wp // M)),
    ], [
        ("not_shifted", 0, lambda: x),
        ("shift_direction", 0, lambda: torch.roll(x, shifts=(s, s), dims=(1, 2))),
        ("mask_inf", 2, lambda: mask.masked_fill(mask != 0, float("-inf"))),
        ("mask_sign", 2, lambda: -mask),
        ("mask_inverted", 2, lambda: torch.where(mask == 0, -100.0, 0.0).to(mask.dtype)),
    ])


def _attention(trace: Trace, model: torch.nn.Module, step: str) -> Case:
    scope = step.rsplit(".", 1)[0]
    q, k, v = (_tensor(trace, scope + ".unbind", name) for name in "qkv")
    bias = _tensor(trace, scope + ".bias_permute", "relative_position_bias")
    mask = trace.captured.get(scope + ".mask_matrix/mask")
    weights = _tensor(trace, step, "attn")
    d = q.shape[-1]

    def attend(scale: float = d**-0.5, with_bias: torch.Tensor | None = bias, with_mask: torch.Tensor | None = mask,
               softmax: int | None = -1) -> torch.Tensor:
        scores = (q * scale) @ k.transpose(-2, -1)  # B*nW, heads, N, N
        if with_bias is not None:
            scores = scores + with_bias.unsqueeze(0)
        if with_mask is not None:
            nW, N = with_mask.shape[0], scores.shape[-1]
            per_image = scores.view(-1, nW, scores.shape[1], N, N)  # B, nW, heads, N, N
            scores = (per_image + with_mask.unsqueeze(1).unsqueeze(0)).view(scores.shape)  # B*nW, heads, N, N
        return scores if softmax is None else scores.softmax(softmax)

    mistakes: list[Mistake] = [
        ("no_scale", 0, lambda: attend(scale=1.0)),
        ("scale_dim", 0, lambda: attend(scale=1.0 / d)),
        ("no_bias", 0, lambda: attend(with_bias=None)),
        ("bias_transposed", 0, lambda: attend(with_bias=bias.transpose(-2, -1))),
        ("softmax_dim", 0, lambda: attend(softmax=-2)),
        ("no_softmax", 0, lambda: attend(softmax=None)),
    ]
    if mask is not None:
        mistakes[2:2] = [("no_mask", 0, lambda: attend(with_mask=None)),
                         ("mask_subtracted", 0, lambda: attend(with_mask=-mask))]
    return Case("window_attention", step, (q, k, v, bias, mask),
                [Output("attn", weights, ("windows", "heads", "queries", "keys"))], mistakes)


def _tensor(trace: Trace, step_id: str, name: str) -> torch.Tensor:
    try:
        return trace.tensor(step_id, name)
    except KeyError:
        raise UserError.of("check_not_traced", step=step_id) from None


def _block_and_stage(step: str) -> tuple[str, str]:
    block = step.rsplit(".", 1)[0]
    return block, block.rsplit(".", 2)[0]


_LAYER = r"layers\.\d{1,3}"
_BLOCK = _LAYER + r"\.blocks\.\d{1,3}"

PIECES = (
    Piece("window_partition", re.compile(rf"{_LAYER}\.(blocks\.\d{{1,3}}|create_mask)\.window_partition"),
          "layers.0.blocks.0.window_partition", lambda step: [step + ".input", step + ".output"], _window_partition),
    Piece("window_reverse", re.compile(rf"{_BLOCK}\.window_reverse"), "layers.0.blocks.0.window_reverse",
          lambda step: [step + ".input", step + ".output"], _window_reverse),
    Piece("relative_position_index", re.compile(rf"{_BLOCK}\.attn\.bias_gather"), "layers.0.blocks.0.attn.bias_gather",
          lambda step: [step], _index),
    Piece("shift_and_mask", re.compile(rf"{_BLOCK}\.cyclic_shift"), "layers.0.blocks.1.cyclic_shift",
          lambda step: [step, *(_block_and_stage(step)[0] + part for part in (".view", ".window_pad")),
                        *(_block_and_stage(step)[1] + part for part in (".create_mask.mask_regions", ".create_mask.mask_fill"))],
          _shift),
    Piece("window_attention", re.compile(rf"{_BLOCK}\.attn\.softmax"), "layers.0.blocks.1.attn.softmax",
          lambda step: [step.rsplit(".", 1)[0] + part for part in (".unbind", ".bias_permute", ".mask_matrix", ".softmax")],
          _attention),
)


def piece_of(step: object) -> Piece:
    """The piece checked at ``step``, or a UserError naming the steps each piece is checked at."""
    if isinstance(step, str):
        for piece in PIECES:
            if piece.pattern.fullmatch(step):
                return piece
    shown = repr(step)[:80]
    raise UserError.of("check_step", step=shown, examples=", ".join(piece.example for piece in PIECES))
