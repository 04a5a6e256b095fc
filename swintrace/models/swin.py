"""Swin Transformer V1, instrumented: every step of its forward pass can be traced.

The parameter names and the math are those of the official implementation
(microsoft/Swin-Transformer ``models/swin_transformer.py``), so its checkpoints
load as they are. Two things go beyond it, as in torchvision and the seed
walkthrough: any input size (padding to the patch size, to the window size and
to even sizes, cropping back after) and attention masks computed per padded
size and cached. On a map that is not a whole number of windows an SW-MSA
block pads, then rolls (torchvision's order), or rolls, then pads (timm's), as
the config's ``shift_order`` says; the walkthrough shows the steps in the
order they ran.

Each ``step(...)`` call records what the statements just before it produced;
outside ``swintrace.tracing()`` it returns at once (see tracing.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ROLL_THEN_PAD, SwinConfig
from ..errors import UserError
from ..geometry import padded_size
from ..recording.tracing import Instrumented, step, traced_function
from .layers import DropPath, Mlp, PatchEmbed, check_input, init_weights
from .picture_steps import PictureCapture
from .windows import cached_per_size, relative_position_index, window_partition, window_reverse

if TYPE_CHECKING:
    from ..recording.capture import PictureOptions
    from ..recording.summary import SummaryBatch
    from ..trace.events import Trace


class WindowAttentionBase(Instrumented):
    """What V1's and V2's window attentions share: gathering the bias by offset, and everything
    from adding it to the scores to the output projection."""

    num_heads: int
    relative_position_index: torch.Tensor
    softmax: nn.Softmax
    attn_drop: nn.Dropout
    proj: nn.Linear
    proj_drop: nn.Dropout

    def gather_bias(self, relative_position_bias_table: torch.Tensor, N: int) -> torch.Tensor:
        """(2M-1)^2, heads table -> (heads, N, N): each (query, key) pair's row, by their offset."""
        relative_position_bias = relative_position_bias_table[
            self.relative_position_index.view(-1)
        ].view(N, N, -1)  # N, N, heads
        step(
            "bias_gather",
            relative_position_index=self.relative_position_index,
            relative_position_bias_table=relative_position_bias_table,
            relative_position_bias=relative_position_bias,
        )
        relative_position_bias = relative_position_bias.permute(2, 0, 1).contiguous()  # heads, N, N
        step("bias_permute", relative_position_bias=relative_position_bias)
        return relative_position_bias

    def attend(
        self, attn: torch.Tensor, relative_position_bias: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Scores (B*nW, heads, N, N) + bias (heads, N, N) [+ mask (nW, N, N)] -> softmax -> weights
        times v (B*nW, heads, N, C/heads) -> projected output (B*nW, N, C)."""
        B_, _, N, _ = attn.shape
        attn = attn + relative_position_bias.unsqueeze(0)
        step("add_bias", attn=attn)
        if mask is not None:
            nW = mask.shape[0]
            step("mask_matrix", mask=mask, nW=nW)
            attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)  # B, nW, heads, N, N
            step("add_mask", attn=attn)
            attn = attn.view(-1, self.num_heads, N, N)  # B*nW, heads, N, N
            step("mask_view", attn=attn)
        else:
            step("add_mask", note="no_mask")
        attn = self.softmax(attn)
        step("softmax", attn=attn)
        attn = self.attn_drop(attn)
        step("attn_drop", self.attn_drop, attn=attn)
        x = (attn @ v).transpose(1, 2).reshape(B_, N, -1)  # B*nW, N, C: heads side by side
        step("attn_v", x=x)
        x = self.proj(x)
        step("proj", self.proj, x=x)
        x = self.proj_drop(x)
        step("proj_drop", self.proj_drop, x=x)
        step("output", x=x)
        return x


class WindowAttention(WindowAttentionBase):
    """Multi-head self-attention inside each window, with relative position bias."""

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool,
        attn_drop: float,
        proj_drop: float,
        qk_scale: float | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        # One learned bias per head for each of the (2M-1)^2 possible offsets.
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )  # (2M-1)^2, heads
        # Recomputed, never loaded: checkpoints' copies are ignored.
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )  # M*M, M*M
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.softmax = nn.Softmax(dim=-1)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B*nW, N, C) with N = M*M tokens per window; mask: (nW, N, N) or None."""
        B_, N, C = x.shape
        step("input", x=x)
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)  # 3, B*nW, heads, N, C/heads
        step("qkv", self.qkv, qkv=qkv, num_heads=self.num_heads)
        q, k, v = qkv.unbind(0)  # each B*nW, heads, N, C/heads
        step("unbind", q=q, k=k, v=v)
        q = q * self.scale
        step("scale", q=q, scale=self.scale)
        attn = q @ k.transpose(-2, -1)  # B*nW, heads, N, N
        step("scores", attn=attn)
        relative_position_bias = self.gather_bias(self.relative_position_bias_table, N)  # heads, N, N
        return self.attend(attn, relative_position_bias, v, mask)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


class SwinTransformerBlock(Instrumented):
    """One Swin block: (shifted) window attention, then an MLP, each with a residual."""

    # The V2 block brings its own attention.
    attention_class: type[WindowAttentionBase] = WindowAttention

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop: float,
        attn_drop: float,
        drop_path: float,
        shift_of: Callable[[int, int], tuple[int, int]],
        roll_first: bool = False,
        **attention_options: Any,
    ) -> None:
        """``attention_options``: the keywords only one generation's attention takes (V1's qk_scale)."""
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        # (shift along H, along W) for a padded Hp x Wp map: the stage's rule (SwinConfig.stage_shift).
        self.shift_of = shift_of
        # timm's order: roll the map, then pad it (else pad, then roll the padded map).
        self.roll_first = roll_first
        self.norm1 = nn.LayerNorm(dim)
        self.attn = self.attention_class(dim, window_size, num_heads, qkv_bias, attn_drop, drop, **attention_options)
        self.drop_path: nn.Module = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(
        self, x: torch.Tensor, H: int, W: int, attn_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """x: (B, H*W, C) -> (B, H*W, C); attn_mask: the stage's (nW, N, N) mask or None."""
        step("input", x=x, attn_mask=attn_mask)
        shortcut = x
        step("shortcut", shortcut=shortcut)
        x = self.norm1(x)
        step("norm", self.norm1, name="norm1", x=x)
        x = self.shifted_window_attention(x, H, W, attn_mask)  # B, H*W, C
        x = shortcut + self.drop_path(x)
        step("residual", self.drop_path, x=x)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        step("mlp_residual", self.norm2, self.mlp, self.drop_path, x=x)
        step("output", x=x)
        return x

    def shifted_window_attention(
        self, x: torch.Tensor, H: int, W: int, attn_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C): shift, cut into windows, attend inside each, stitch, shift back."""
        B, L, C = x.shape
        x = x.view(B, H, W, C)  # B, H, W, C
        step("view", x=x)

        Hp, Wp = padded_size(H, self.window_size), padded_size(W, self.window_size)
        shift_h, shift_w = self.shift_of(Hp, Wp) if self.shift_size else (0, 0)
        if self.roll_first:  # timm's order: roll the map, then pad it
            shifted_x, attn_mask = self.cyclic_shift(x, shift_h, shift_w, attn_mask)
            shifted_x = self.window_pad(shifted_x, H, W)
        else:  # torchvision's order: pad, then roll the padded map
            x = self.window_pad(x, H, W)
            shifted_x, attn_mask = self.cyclic_shift(x, shift_h, shift_w, attn_mask)

        x_windows = window_partition(shifted_x, self.window_size)  # B*nW, M, M, C
        x_windows = x_windows.view(-1, self.window_size * self.window_size, C)  # B*nW, M*M, C
        step("partition_windows", x_windows=x_windows)
        attn_windows = self.attn(x_windows, mask=attn_mask)  # B*nW, M*M, C
        step("sw_msa" if attn_mask is not None else "w_msa", name="attention", attn_windows=attn_windows)
        attn_windows = attn_windows.view(-1, self.window_size, self.window_size, C)  # B*nW, M, M, C
        step("merge_view", attn_windows=attn_windows)
        shifted_x = window_reverse(attn_windows, self.window_size, Hp, Wp)  # B, Hp, Wp, C
        step("merge_windows", shifted_x=shifted_x)

        if self.roll_first:  # timm's order: crop the padding, then roll back
            x = self.reverse_shift(self.crop(shifted_x, H, W), shift_h, shift_w)
        else:
            x = self.crop(self.reverse_shift(shifted_x, shift_h, shift_w), H, W)
        x = x.view(B, H * W, C)  # B, L, C
        step("view", name="view_tokens", x=x)
        return x

    def window_pad(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """(B, H, W, C) -> (B, Hp, Wp, C): zeros right and bottom up to whole windows."""
        pad_r = (self.window_size - W % self.window_size) % self.window_size
        pad_b = (self.window_size - H % self.window_size) % self.window_size
        if pad_r or pad_b:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))  # B, Hp, Wp, C
            step("window_pad", x=x, pad_b=pad_b, pad_r=pad_r)
        else:
            step("window_pad", note="no_window_pad", H=H, W=W, window_size=self.window_size)
        return x

    def cyclic_shift(
        self, x: torch.Tensor, shift_h: int, shift_w: int, attn_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, h, w, C) rolled up and left by the shift, and the mask it needs (None without a shift)."""
        if shift_h or shift_w:
            shifted_x = torch.roll(x, shifts=(-shift_h, -shift_w), dims=(1, 2))
            step("cyclic_shift", shifted_x=shifted_x, shift_size=[shift_h, shift_w], rearranges=x)
        else:
            shifted_x = x
            attn_mask = None
            step("cyclic_shift", shifted_x=shifted_x, note="no_shift", shift_size=[0, 0])
        return shifted_x, attn_mask

    def reverse_shift(self, shifted_x: torch.Tensor, shift_h: int, shift_w: int) -> torch.Tensor:
        """(B, h, w, C) rolled back down and right: the inverse of ``cyclic_shift``."""
        if shift_h or shift_w:
            x = torch.roll(shifted_x, shifts=(shift_h, shift_w), dims=(1, 2))
            step("reverse_shift", x=x, shift_size=[shift_h, shift_w], rearranges=shifted_x)
        else:
            x = shifted_x
            step("reverse_shift", x=x, note="no_shift")
        return x

    def crop(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """(B, Hp, Wp, C) -> (B, H, W, C): the window padding cut off."""
        if x.shape[1] != H or x.shape[2] != W:
            x = x[:, :H, :W, :].contiguous()  # B, H, W, C
            step("crop", x=x)
        else:
            step("crop", note="no_window_pad", H=H, W=W, window_size=self.window_size)
        return x


class PatchMerging(Instrumented):
    """Downsampling between stages: each 2x2 group of tokens becomes one token."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """x: (B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), 2C)."""
        step("input", x=x)
        x = self.group_neighbours(x, H, W)  # B, H/2*W/2, 4C
        x = self.norm(x)
        step("norm", self.norm, x=x)
        x = self.reduction(x)  # B, H/2*W/2, 2C
        step("reduction", self.reduction, x=x)
        step("output", x=x)
        return x

    def group_neighbours(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """(B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), 4C): each 2x2 group's four tokens side by side."""
        B, L, C = x.shape
        x = x.view(B, H, W, C)  # B, H, W, C
        step("view", x=x)
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))  # B, H + H%2, W + W%2, C
            step("merge_pad", x=x)
        else:
            step("merge_pad", note="even_no_pad", H=H, W=W)
        x0 = x[:, 0::2, 0::2, :]  # B, H/2, W/2, C: top-left of each 2x2 group
        x1 = x[:, 1::2, 0::2, :]  # bottom-left
        x2 = x[:, 0::2, 1::2, :]  # top-right
        x3 = x[:, 1::2, 1::2, :]  # bottom-right
        step("gather", x0=x0, x1=x1, x2=x2, x3=x3)
        x = torch.cat([x0, x1, x2, x3], -1)  # B, H/2, W/2, 4C
        step("cat", x=x)
        x = x.view(B, -1, 4 * C)  # B, H/2*W/2, 4C
        step("view", name="view_tokens", x=x)
        return x


class BasicLayer(Instrumented):
    """A basic Swin Transformer layer for one stage: blocks, then optional downsampling."""

    # The V2 stage builds V2 blocks and merging.
    block_class: type[SwinTransformerBlock] = SwinTransformerBlock
    merging_class: type[PatchMerging] = PatchMerging

    def __init__(
        self,
        config: SwinConfig,
        stage: int,
        drop_path: list[float],
    ) -> None:
        super().__init__()
        dim = config.embed_dim * 2**stage
        self.window_size, self.shift_size = config.stage_window(stage)
        # (shift along H, along W) of this stage's SW-MSA blocks on a padded Hp x Wp map.
        self.shift_of = functools.partial(config.stage_shift, stage)
        self.blocks = nn.ModuleList(
            self.block_class(
                dim=dim,
                num_heads=config.num_heads[stage],
                window_size=self.window_size,
                shift_size=0 if index % 2 == 0 else self.shift_size,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                drop=config.drop_rate,
                attn_drop=config.attn_drop_rate,
                drop_path=drop_path[index],
                shift_of=self.shift_of,
                roll_first=config.shift_order == ROLL_THEN_PAD,
                **self.attention_options(config, stage),
            )
            for index in range(config.depths[stage])
        )
        # A module slot even when empty, so that reports show "self.downsample: None".
        self.add_module("downsample", self.merging_class(dim) if stage < config.num_stages - 1 else None)
        self._mask_cache: dict[tuple[Any, ...], torch.Tensor | None] = {}

    @staticmethod
    def attention_options(config: SwinConfig, stage: int) -> dict[str, Any]:
        """The keywords of this generation's attention: V1's optional scale override."""
        return {"qk_scale": config.qk_scale}

    def forward(self, x: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, int, int]:
        """x: (B, H*W, C) -> (x, H, W) of the next stage: (B, H/2*W/2, 2C) after merging."""
        step("input", x=x, H=H, W=W)
        attn_mask = self.create_mask(x, H, W)  # nW, M*M, M*M or None
        step("create_mask", name="attn_mask", attn_mask=attn_mask)
        for blk in self.blocks:
            x = blk(x, H, W, attn_mask)
        step("blocks_loop", x=x)
        if self.downsample is not None:
            x = self.downsample(x, H, W)
            H, W = (H + 1) // 2, (W + 1) // 2
        step("downsample", name="downsampled", x=x, downsample=self.downsample, H=H, W=W)
        step("output", x=x, H=H, W=W)
        return x, H, W

    @traced_function
    @cached_per_size
    def create_mask(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor | None:
        """The SW-MSA mask of a padded H x W map: (nW, M*M, M*M) of 0 and -100, or None.

        After the cyclic shift a window can hold tokens from up to four regions
        that are not neighbours in the image; -100 before the softmax stops them
        attending to each other.
        """
        window_size = self.window_size
        Hp, Wp = padded_size(H, window_size), padded_size(W, window_size)
        shift_h, shift_w = self.shift_of(Hp, Wp)
        if not (shift_h or shift_w):
            step("mask_regions", note="no_mask_needed", Hp=Hp, Wp=Wp, window_size=window_size)
            return None
        img_mask = torch.zeros((1, Hp, Wp, 1), device=x.device, dtype=x.dtype)  # 1, Hp, Wp, 1
        h_slices = (slice(0, -window_size), slice(-window_size, -shift_h), slice(-shift_h, None))
        w_slices = (slice(0, -window_size), slice(-window_size, -shift_w), slice(-shift_w, None))
        region = 0
        for h in h_slices:
            for w in w_slices:
                img_mask[:, h, w, :] = region
                region += 1
        step("mask_regions", img_mask=img_mask, Hp=Hp, Wp=Wp, shift_size=[shift_h, shift_w])
        mask_windows = window_partition(img_mask, window_size)  # nW, M, M, 1
        mask_windows = mask_windows.view(-1, window_size * window_size)  # nW, M*M
        step("mask_windows", mask_windows=mask_windows)
        attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)  # nW, M*M, M*M
        attn_mask = attn_mask.masked_fill(attn_mask != 0, -100.0).masked_fill(attn_mask == 0, 0.0)
        step("mask_fill", attn_mask=attn_mask)
        return attn_mask


class SwinTransformer(Instrumented):
    """Swin Transformer V1 for image classification."""

    # Swin V2 builds its stages of V2 blocks.
    layer_class: type[BasicLayer] = BasicLayer
    # The generation this class builds (SwinConfig.version).
    version = 1

    def __init__(self, config: SwinConfig, variant: str | None = None) -> None:
        super().__init__()
        if config.version != self.version:
            raise UserError.of("model_version", cls=type(self).__name__, expected=self.version, version=config.version)
        self.config = config
        self.variant = variant
        # Where the weights came from, for headers and reports (set by load_model).
        self.weights_source: dict[str, Any] = {"kind": "random", "seed": None}
        # Names of the classes, index by index (load_model sets ImageNet's); None: "class N".
        self.class_labels: tuple[str, ...] | None = None
        # The source's data config (from_model of a timm model or a Hugging Face pipeline): "transform",
        # the fields of images.prepare.EvalTransform, and "source", where they come from. None: ours.
        self.data_config: dict[str, Any] | None = None
        self.patch_embed = PatchEmbed(config)
        self.pos_drop = nn.Dropout(config.drop_rate)
        # Stochastic depth grows linearly over all blocks of all stages.
        rates = torch.linspace(0, config.drop_path_rate, sum(config.depths), device="cpu").tolist()
        starts = [sum(config.depths[:stage]) for stage in range(config.num_stages)]
        self.layers = nn.ModuleList(
            self.layer_class(config, stage, rates[start : start + config.depths[stage]])
            for stage, start in enumerate(starts)
        )
        self.norm = nn.LayerNorm(config.num_features)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(config.num_features, config.num_classes)
        self.apply(init_weights)
        # Inputs are checked before the forward runs, so that its first line is Swin's own.
        self.register_forward_pre_hook(check_input, with_kwargs=True)
        # Counted once: every trace header states it, and the module tree is fixed.
        self.parameter_count = sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_chans, H, W) images -> (B, num_classes) logits."""
        step("input", x=x)
        x, H, W = self.patch_embed(x)  # B, H/4*W/4, C
        x = self.pos_drop(x)
        step("pos_drop", self.pos_drop, x=x)
        for layer in self.layers:
            x, H, W = layer(x, H, W)
        step("layers_loop", x=x, H=H, W=W)
        return self.forward_head(x)

    @traced_function
    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Classification head: (B, L, C) tokens -> (B, num_classes) logits."""
        x = self.norm(x)
        step("final_norm", self.norm, x=x)
        x = self.avgpool(x.transpose(1, 2))  # B, C, 1
        step("avgpool", self.avgpool, x=x)
        x = torch.flatten(x, 1)  # B, C
        step("head_flatten", x=x)
        x = self.head(x)  # B, num_classes
        step("head", self.head, x=x)
        step("output", x=x)
        return x

    def picture_capture(self, options: PictureOptions, batch: SummaryBatch, trace: Trace) -> PictureCapture:
        """What the pictures take from this model's steps while a traced forward runs."""
        return PictureCapture(options, batch, trace)

    def gradient_parameters(self) -> dict[str, tuple[str, bool]]:
        """The parameters whose gradients a backward trace records: name -> (kind, kept whole)."""
        from .gradients import lesson_parameters

        return lesson_parameters(self)

    def describe(self) -> dict[str, Any]:
        """Header fields of a trace of this model."""
        return {
            "model": {
                "family": f"swin_v{self.version}",
                "class": type(self).__name__,
                "variant": self.variant,
                "config": self.config.to_dict(),
                "parameters": self.parameter_count,
                "training": self.training,
            },
            "weights": dict(self.weights_source),
        }
