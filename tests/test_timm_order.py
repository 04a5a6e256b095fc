"""timm's order of shift and padding: an adopted timm model computes what timm computes, at every size.

timm (``timm/models/swin_transformer.py``, 1.0) rolls a stage's map *before* padding it to whole
windows, builds the mask on the padded map with its regions counted from the padded edge, and fixes a
block's window and shift when it builds it, from the map at ``img_size`` (floor division per stage).
``timm_forward`` restates that forward functionally, from a timm-layout state dict, so that the suite
checks ``shift_order="roll_then_pad"`` without timm; tests/test_ecosystem.py checks real timm models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import swintrace
from swintrace.checkpoints.layouts import from_official
from swintrace.config import ROLL_THEN_PAD, SwinConfig
from swintrace.recording.capture import PictureOptions
from swintrace.render.text import summary_rows


def _norm(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], state[prefix + "weight"], state[prefix + "bias"])


def _partition(x: torch.Tensor, m: int) -> torch.Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // m, m, w // m, m, c)  # B, H/M, M, W/M, M, C
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, m * m, c)  # B*nW, M*M, C


def _reverse(windows: torch.Tensor, m: int, h: int, w: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.view(-1, h // m, w // m, m, m, c)  # B, H/M, W/M, M, M, C
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)  # B, H, W, C


def _timm_mask(hp: int, wp: int, m: int, shift: int) -> torch.Tensor:
    """timm's ``get_attn_mask``: regions of the padded map, cut at -M and -shift from its far edge."""
    img_mask = torch.zeros((1, hp, wp, 1))  # 1, Hp, Wp, 1
    count = 0
    for h in ((0, -m), (-m, -shift), (-shift, None)):
        for w in ((0, -m), (-m, -shift), (-shift, None)):
            img_mask[:, h[0]:h[1], w[0]:w[1], :] = count
            count += 1
    mask_windows = _partition(img_mask, m).squeeze(-1)  # nW, M*M
    mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)  # nW, M*M, M*M
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def _attention(x: torch.Tensor, state: dict, prefix: str, heads: int, m: int, mask: torch.Tensor | None):
    """timm's WindowAttention (non-fused): x (B*nW, N, C) -> (B*nW, N, C)."""
    b_, n, c = x.shape
    qkv = F.linear(x, state[prefix + "qkv.weight"], state[prefix + "qkv.bias"])
    q, k, v = qkv.reshape(b_, n, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # each B*nW, heads, N, C/heads
    coords = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")).flatten(1)  # 2, N
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (m - 1)  # N, N, 2
    index = relative[:, :, 0] * (2 * m - 1) + relative[:, :, 1]  # N, N
    bias = state[prefix + "relative_position_bias_table"][index.view(-1)].view(n, n, -1).permute(2, 0, 1)  # heads, N, N
    attn = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1) + bias.unsqueeze(0)  # B*nW, heads, N, N
    if mask is not None:
        windows = mask.shape[0]
        attn = attn.view(-1, windows, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)  # B, nW, heads, N, N
        attn = attn.view(-1, heads, n, n)  # B*nW, heads, N, N
    x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b_, n, -1)  # B*nW, N, C
    return F.linear(x, state[prefix + "proj.weight"], state[prefix + "proj.bias"])


def _block(x: torch.Tensor, state: dict, prefix: str, heads: int, m: int, shift: int) -> torch.Tensor:
    """timm's SwinTransformerBlock on (B, H, W, C): roll, then pad; crop, then roll back."""
    _, h, w, c = x.shape
    shifted = _norm(x, state, prefix + "norm1.")
    if shift:
        shifted = torch.roll(shifted, shifts=(-shift, -shift), dims=(1, 2))
    shifted = F.pad(shifted, (0, 0, 0, (m - w % m) % m, 0, (m - h % m) % m))  # B, Hp, Wp, C
    hp, wp = shifted.shape[1], shifted.shape[2]
    windows = _attention(_partition(shifted, m), state, prefix + "attn.", heads, m,
                         _timm_mask(hp, wp, m, shift) if shift else None)
    shifted = _reverse(windows, m, hp, wp)[:, :h, :w, :]  # B, H, W, C
    if shift:
        shifted = torch.roll(shifted, shifts=(shift, shift), dims=(1, 2))
    x = x + shifted
    hidden = F.gelu(F.linear(_norm(x, state, prefix + "norm2."), state[prefix + "mlp.fc1.weight"],
                             state[prefix + "mlp.fc1.bias"]))
    return x + F.linear(hidden, state[prefix + "mlp.fc2.weight"], state[prefix + "mlp.fc2.bias"])


def timm_forward(state: dict, config: SwinConfig, images: torch.Tensor, always_partition: bool = False):
    """Logits of timm's SwinTransformer built at ``config.img_size``, from its timm-layout state dict."""
    x = F.conv2d(images, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=config.patch_size)
    x = _norm(x.permute(0, 2, 3, 1), state, "patch_embed.norm.")  # B, H, W, C
    grid = config.img_size // config.patch_size
    for stage, depth in enumerate(config.depths):
        if stage:  # timm's PatchMerging opens the stage: pad odd sides, 2x2 neighbours side by side
            prefix = f"layers.{stage}.downsample."
            b, h, w, c = x.shape
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
            x = x.reshape(b, (h + 1) // 2, 2, (w + 1) // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)  # B, H/2, W/2, 4C
            x = F.linear(_norm(x, state, prefix + "norm."), state[prefix + "reduction.weight"])
        built = grid // 2**stage  # the map timm builds the stage's blocks for
        window = config.window_size if always_partition else min(built, config.window_size)
        shift = config.window_size // 2 if always_partition else (0 if built <= window else window // 2)
        for index in range(depth):
            x = _block(x, state, f"layers.{stage}.blocks.{index}.", config.num_heads[stage], window,
                       shift if index % 2 else 0)
    x = _norm(x, state, "norm.").mean(dim=(1, 2))
    return F.linear(x, state["head.fc.weight"], state["head.fc.bias"])


def _small(size: int, **fields) -> SwinConfig:
    """A Swin small enough to run in a blink: 8-pixel patches, 8 channels, window 7."""
    return SwinConfig(**{"img_size": size, "patch_size": 8, "embed_dim": 8, "depths": (2, 2, 2, 2),
                         "num_heads": (1, 2, 2, 4), "num_classes": 10, "drop_path_rate": 0.0} | fields)


def _model(config: SwinConfig) -> swintrace.SwinTransformer:
    torch.manual_seed(config.img_size)
    model = swintrace.SwinTransformer(config).eval()
    with torch.no_grad():  # weights far from the initialisation's, so that a wrong order shows in the logits
        for name, parameter in model.named_parameters():
            if name.endswith(("relative_position_bias_table", "qkv.weight", "fc1.weight")):
                parameter.normal_(0, 0.5)
    return model


def _images(size: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(size))


@pytest.mark.numeric
@pytest.mark.parametrize("size", [160, 192, 288, 120])
def test_roll_then_pad_is_timms_forward_and_pad_then_roll_is_not(size):
    """160, 192, 288 (in 8-pixel patches): stage maps of 20, 10, 5 (or 24, 12, 6; 36, 18, 9, 4) that
    are not multiples of the window 7; 120: a stage built for 7 runs on 8 (odd merges pad), where timm
    does not shift."""
    model = _model(_small(size, shift_order=ROLL_THEN_PAD))
    state = from_official(model.state_dict(), "timm")
    images = _images(size)
    with torch.no_grad():
        expected = timm_forward(state, model.config, images)
        ours = model(images)
        assert (ours - expected).abs().max().item() <= 1e-4
        theirs = swintrace.SwinTransformer(_small(size)).eval()  # torchvision's order, the same weights
        theirs.load_state_dict(model.state_dict())
        assert (theirs(images) - expected).abs().max().item() > 1e-3


@pytest.mark.numeric
def test_always_partition_keeps_the_window_and_shifts_every_stage():
    config = _small(160, shift_order=ROLL_THEN_PAD, always_partition=True)  # stage 4: a 2x2 map in a 7x7 window
    assert [config.stage_window(stage) for stage in range(4)] == [(7, 3)] * 4
    model = _model(config)
    images = _images(160)
    with torch.no_grad():
        expected = timm_forward(from_official(model.state_dict(), "timm"), config, images, always_partition=True)
        assert (model(images) - expected).abs().max().item() <= 1e-4
    with torch.no_grad(), swintrace.tracing() as trace:
        model(images)
    assert trace["layers.3.blocks.1.cyclic_shift"].scalars["shift_size"] == [3, 3]


class TimmLike(torch.nn.Module):
    """What from_model reads of a timm SwinTransformer: a timm-layout state dict, ``patch_embed.img_size``,
    its blocks' ``always_partition`` and its ``pretrained_cfg``."""

    def __init__(self, state: dict, size: int, pretrained_cfg: dict) -> None:
        super().__init__()
        self.patch_embed = torch.nn.Module()
        self.patch_embed.img_size = (size, size)
        self.block = torch.nn.Module()
        self.block.always_partition = False
        self.pretrained_cfg = pretrained_cfg
        self.state = state

    def state_dict(self, *args, **kwargs) -> dict:
        return dict(self.state)


TIMM_CFG = {"architecture": "swin_tiny_patch4_window7_224", "tag": "ms_in1k", "input_size": (3, 224, 224),
            "interpolation": "bicubic", "crop_pct": 0.9, "crop_mode": "center",
            "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


@pytest.mark.numeric
def test_an_adopted_timm_model_walks_through_timms_order_and_says_so():
    model = _model(_small(64))
    state = from_official(model.state_dict(), "timm")
    adopted = swintrace.from_model(TimmLike(state, 64, TIMM_CFG))
    assert adopted.config.shift_order == ROLL_THEN_PAD and adopted.config.img_size == 64
    images = _images(64)
    with torch.no_grad():
        expected = timm_forward(state, adopted.config, images)
    with torch.no_grad(), swintrace.tracing(pictures=PictureOptions("layers.0.blocks.1")) as trace:
        assert (adopted(images) - expected).abs().max().item() <= 1e-4
    block = [event for event in trace.events if event.type == "step" and event.id.startswith("layers.0.blocks.1.")
             and event.id.count(".") == 4]
    order = [event.kind for event in block]
    walked = ["norm", "view", "cyclic_shift", "window_pad", "partition_windows", "sw_msa", "merge_view",
              "merge_windows", "crop", "reverse_shift", "view"]
    assert [kind for kind in order if kind in walked] == walked  # every step, in the order timm runs them
    assert trace["layers.0.blocks.1.window_pad"].code == ["x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))  # B, Hp, Wp, C"]
    # the query the pictures follow is where timm's roll, then pad, puts it (torch.roll of an index map)
    query = [int(v) for v in trace["layers.0.blocks.1.cyclic_shift"].array("query").values]
    _, _, token_y, token_x, window, token, m = query
    positions = torch.arange(8 * 8).view(1, 8, 8, 1).float()  # 1, H, W, 1: each token's index
    moved = F.pad(torch.roll(positions, shifts=(-3, -3), dims=(1, 2)), (0, 0, 0, 6, 0, 6), value=-1)  # 1, 14, 14, 1
    assert _partition(moved, m)[window, token, 0].item() == token_y * 8 + token_x
    model_line = dict(summary_rows(trace, "en"))["Model"]  # the reports' summary, first line
    assert "window 7, timm's order: roll, then pad," in model_line
    assert "timm 的顺序：先循环移位，再填充" in dict(summary_rows(trace, "zh"))["模型"]


def test_the_explorer_and_the_shift_picture_follow_timms_order():
    from swintrace.pictures.grids import cyclic_shift, stage_geometry
    from swintrace.render.explorer import explorer_data

    model = _model(_small(64, shift_order=ROLL_THEN_PAD))
    with torch.no_grad(), swintrace.tracing(pictures=True) as trace:
        model(_images(64))
    geometry = stage_geometry(trace, 0)
    assert (geometry["H"], geometry["Hp"], geometry["rolled_h"], geometry["shift_h"]) == (8, 14, 8, 3)
    assert explorer_data(trace)["stages"][0]["rolled"] == [8, 8]
    picture = cyclic_shift(trace, 0)
    assert picture is not None and picture.meta["shape"] == [14, 14]


def _timm_reach(model: swintrace.SwinTransformer, H: int, W: int) -> list[tuple[str, torch.Tensor]]:
    """Every token's reach after every block, propagated as one-hot maps the way timm's blocks move
    them: torch.roll of the map, then padding, the model's own mask, window_partition; crop, roll back."""
    from swintrace.models.windows import window_partition, window_reverse

    config, seen, after = model.config, torch.eye(H * W).reshape(H, W, H * W), []  # H, W, P
    for stage, layer in enumerate(model.layers):
        M = config.stage_window(stage)[0]
        Hs, Ws = seen.shape[:2]
        Hp, Wp = -(-Hs // M) * M, -(-Ws // M) * M
        shift = config.stage_shift(stage, Hp, Wp)
        mask = layer.create_mask(seen, Hs, Ws)  # nW, N, N of 0 and -100, or None
        for index in range(config.depths[stage]):
            shifted = index % 2 == 1 and shift != (0, 0)
            rolled = torch.roll(seen, shifts=(-shift[0], -shift[1]), dims=(0, 1)) if shifted else seen
            padded, real = torch.zeros(Hp, Wp, H * W), torch.zeros(Hp, Wp, 1)  # Hp, Wp, P and Hp, Wp, 1
            padded[:Hs, :Ws], real[:Hs, :Ws] = rolled, 1
            windows = window_partition(padded[None], M).reshape(-1, M * M, H * W)  # nW, N, P
            real_keys = window_partition(real[None], M).reshape(-1, 1, M * M)  # nW, 1, N
            allowed = (mask == 0).float() if shifted else torch.ones(windows.shape[0], M * M, M * M)
            mixed = ((allowed * real_keys) @ windows > 0).float()  # nW, N, P
            mixed = window_reverse(mixed.reshape(-1, M, M, H * W), M, Hp, Wp)[0][:Hs, :Ws]  # Hs, Ws, P
            seen = torch.roll(mixed, shifts=shift, dims=(0, 1)) if shifted else mixed
            after.append((f"layers.{stage}.blocks.{index}", seen > 0))
        if stage + 1 < config.num_stages:  # PatchMerging: pad to even sides, OR of each 2x2 group
            even = torch.zeros(-(-Hs // 2) * 2, -(-Ws // 2) * 2, H * W)
            even[:Hs, :Ws] = seen
            seen = ((even[0::2, 0::2] + even[1::2, 0::2] + even[0::2, 1::2] + even[1::2, 1::2]) > 0).float()
    return after


def test_reach_follows_timms_order():
    from swintrace.pictures.reach import reach

    model = swintrace.SwinTransformer(_small(64, patch_size=4, shift_order=ROLL_THEN_PAD))  # maps 16, 8, 4, 2
    sizes = [(16, 16), (8, 8), (4, 4), (2, 2)]
    independent = dict(_timm_reach(model, 16, 16))
    for y, x in ((15, 0), (3, 12), (8, 8)):
        found = reach(model.config, sizes, y, x)
        assert [block for block, _ in found] == list(independent)
        for block_id, seen in found:
            stage = int(block_id.split(".")[1])
            expected = independent[block_id][min(y >> stage, sizes[stage][0] - 1), min(x >> stage, sizes[stage][1] - 1)]
            assert np.array_equal(seen.reshape(-1), expected.numpy()), ((y, x), block_id)


def test_the_labs_shift_piece_refuses_timms_order_where_it_pads():
    model = swintrace.SwinTransformer(_small(64, shift_order=ROLL_THEN_PAD)).eval()  # a map of 8 in windows of 7
    with pytest.raises(swintrace.UserError, match="ran in timm's order"):
        swintrace.check(lambda x, M, s: (x, x, x), "layers.0.blocks.1.cyclic_shift", model=model, image=_images(64))
