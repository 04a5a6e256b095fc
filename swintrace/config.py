"""Model configurations: one frozen dataclass and the named variants.

The numbers of the ImageNet variants are those of the official Swin Transformer
configs (microsoft/Swin-Transformer ``configs/swin/*.yaml``).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from .errors import UserError


@dataclass(frozen=True)
class SwinConfig:
    """Everything that decides the shape of a Swin Transformer V1."""

    # Square input resolution the model is built for. It decides, per stage, the
    # official rule "a feature map no larger than the window uses window = map and
    # no shift"; other input sizes still run, by padding.
    img_size: int = 224
    # Side of the square patch that PatchEmbed turns into one token (conv stride).
    patch_size: int = 4
    # Channels of the input image.
    in_chans: int = 3
    # Classes of the linear head.
    num_classes: int = 1000
    # Channels C of stage 1; stage i has C * 2**i.
    embed_dim: int = 96
    # Blocks per stage; blocks alternate W-MSA (even index) and SW-MSA (odd index).
    depths: tuple[int, ...] = (2, 2, 6, 2)
    # Attention heads per stage; each must divide that stage's channels.
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    # Side M of the square attention window (M*M tokens attend to each other).
    window_size: int = 7
    # Hidden width of the MLP as a multiple of the block's channels.
    mlp_ratio: float = 4.0
    # Whether the q/k/v projection has a bias.
    qkv_bias: bool = True
    # Override of the attention scale; None means head_dim ** -0.5.
    qk_scale: float | None = None
    # Dropout after the patch embedding, inside the MLP and after the attention projection.
    drop_rate: float = 0.0
    # Dropout on the attention weights.
    attn_drop_rate: float = 0.0
    # Stochastic depth: block i of n drops its residual branch with probability
    # linspace(0, drop_path_rate, n)[i] in training mode.
    drop_path_rate: float = 0.1
    # LayerNorm after the patch projection.
    patch_norm: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.img_size < 1:
            problems.append(f"img_size must be >= 1, got {self.img_size}")
        if self.patch_size < 1:
            problems.append(f"patch_size must be >= 1, got {self.patch_size}")
        if self.in_chans < 1 or self.num_classes < 1 or self.embed_dim < 1:
            problems.append("in_chans, num_classes and embed_dim must be >= 1")
        if self.window_size < 1:
            problems.append(f"window_size must be >= 1, got {self.window_size}")
        if not self.depths or len(self.depths) != len(self.num_heads):
            problems.append(
                f"depths {tuple(self.depths)} and num_heads {tuple(self.num_heads)} "
                "must be non-empty and of the same length"
            )
        if any(d < 1 for d in self.depths):
            problems.append(f"every depth must be >= 1, got {tuple(self.depths)}")
        for stage, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**stage
            if heads < 1 or dim % heads:
                problems.append(f"stage {stage}: {heads} heads do not divide {dim} channels")
        if self.mlp_ratio <= 0:
            problems.append(f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if problems:
            raise UserError("invalid Swin config: " + "; ".join(problems))

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def num_features(self) -> int:
        """Channels after the last stage (input of the final norm and head)."""
        return self.embed_dim * 2 ** (self.num_stages - 1)

    def stage_resolution(self, stage: int) -> int:
        """Side of the stage's feature map for an ``img_size`` input."""
        return self.img_size // self.patch_size // 2**stage

    def stage_window(self, stage: int) -> tuple[int, int]:
        """(window, shift of the SW-MSA blocks) of the stage.

        As in the official code, a stage whose map (at ``img_size``) is smaller
        than the window uses the whole map as its window, which sets the size of
        its bias table. Whether a block really shifts is decided per forward
        (``geometry.runtime_shift``): never along an axis that holds one window,
        so at ``img_size`` a map no larger than the window is not shifted (the
        official rule), while a larger input may shift it (as torchvision does).
        """
        window = max(1, min(self.stage_resolution(stage), self.window_size))
        return window, window // 2

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON data (tuples as lists); a new dict each call."""
        data = dict(_as_dict(self))
        data["depths"] = list(self.depths)
        data["num_heads"] = list(self.num_heads)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwinConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown Swin config fields: {', '.join(unknown)}")
        values = dict(data)
        for name in ("depths", "num_heads"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


_SMALL_DEPTHS = (2, 2, 18, 2)

VARIANTS: dict[str, SwinConfig] = {
    "swin_t": SwinConfig(drop_path_rate=0.2),
    "swin_s": SwinConfig(depths=_SMALL_DEPTHS, drop_path_rate=0.3),
    "swin_b": SwinConfig(
        embed_dim=128, depths=_SMALL_DEPTHS, num_heads=(4, 8, 16, 32), drop_path_rate=0.5
    ),
    "swin_l": SwinConfig(
        embed_dim=192, depths=_SMALL_DEPTHS, num_heads=(6, 12, 24, 48), drop_path_rate=0.2
    ),
    "swin_b_384": SwinConfig(
        img_size=384,
        embed_dim=128,
        depths=_SMALL_DEPTHS,
        num_heads=(4, 8, 16, 32),
        window_size=12,
        drop_path_rate=0.5,
    ),
    "swin_l_384": SwinConfig(
        img_size=384,
        embed_dim=192,
        depths=_SMALL_DEPTHS,
        num_heads=(6, 12, 24, 48),
        window_size=12,
        drop_path_rate=0.2,
    ),
    # The teaching variant: a 32x32 image, 8x8 tokens, window M=2 (the relative
    # position example of the explanations), three stages so that the last one
    # (2x2 map) shows the official "map no larger than the window" rule.
    # Every tensor is small enough to print whole.
    "swin_teach": SwinConfig(
        img_size=32,
        num_classes=10,
        embed_dim=8,
        depths=(2, 2, 2),
        num_heads=(2, 2, 4),
        window_size=2,
        mlp_ratio=2.0,
        drop_path_rate=0.1,
    ),
}


def get_config(variant: str, **overrides: Any) -> SwinConfig:
    """The named variant's config with ``overrides`` applied."""
    if variant not in VARIANTS:
        raise UserError(
            f"unknown model variant {variant!r}; choose one of: {', '.join(VARIANTS)}"
        )
    if not overrides:
        return VARIANTS[variant]
    data = VARIANTS[variant].to_dict()
    data.update(overrides)
    return SwinConfig.from_dict(data)


@functools.lru_cache(maxsize=32)
def _as_dict(config: SwinConfig) -> dict[str, Any]:
    """``dataclasses.asdict`` of a frozen config, computed once (a trace header needs it every time)."""
    return dataclasses.asdict(config)
