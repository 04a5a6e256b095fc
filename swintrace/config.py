"""Model configurations: one frozen dataclass and the named variants.

The numbers of the ImageNet variants are those of the official Swin Transformer
configs (microsoft/Swin-Transformer ``configs/swin/*.yaml``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from dataclasses import dataclass
from typing import Any

from .errors import Listed, UserError, Words
from .geometry import padded_size, runtime_shift

# How a shifted block pads and rolls a map that is not a whole number of windows (SwinConfig.shift_order).
PAD_THEN_ROLL = "pad_then_roll"  # torchvision, Hugging Face, ours: pad, then roll the padded map
ROLL_THEN_PAD = "roll_then_pad"  # timm: roll the map, then pad it
SHIFT_ORDERS = (PAD_THEN_ROLL, ROLL_THEN_PAD)


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
    # How an SW-MSA block shifts a map that is not a whole number of windows (see ``stage_shift``):
    # "pad_then_roll" (torchvision, Hugging Face) pads right and bottom, then rolls the padded map;
    # "roll_then_pad" (timm) rolls the map, then pads it. Both build the mask on the padded map,
    # its regions counted from the padded edge. At sizes that are window multiples they agree.
    shift_order: str = PAD_THEN_ROLL
    # timm's always_partition: every stage keeps the configured window and shifts its SW-MSA
    # blocks, however small its map (padded up to one window).
    always_partition: bool = False
    # The generation: 1, Swin V1 (pre-norm blocks, scaled dot-product attention, a learned bias
    # table); 2, Swin V2 (res-post-norm, scaled cosine attention, a continuous position bias from a
    # small MLP, merging that normalises after the reduction, keys without a bias).
    version: int = 1
    # Swin V2 only, one per stage: the window the stage's position-bias MLP was pre-trained with,
    # whose side normalises the relative coordinates (0, or none given: the stage's own window).
    pretrained_window_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("depths", "num_heads", "pretrained_window_sizes"):  # lists from JSON or a caller
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = _type_problems(self)
        if problems:  # the checks below compare numbers: a "32" or a 2.0 would fail there, or later
            raise UserError.of("config_invalid", problems=Listed(problems))
        if self.img_size < 1:
            problems.append(Words("config_at_least_one", name="img_size", value=self.img_size))
        if self.patch_size < 1:
            problems.append(Words("config_at_least_one", name="patch_size", value=self.patch_size))
        if self.in_chans < 1 or self.num_classes < 1 or self.embed_dim < 1:
            problems.append(Words("config_sizes"))
        if self.window_size < 1:
            problems.append(Words("config_at_least_one", name="window_size", value=self.window_size))
        if not self.depths or len(self.depths) != len(self.num_heads):
            problems.append(Words("config_stage_lengths", depths=tuple(self.depths),
                                  num_heads=tuple(self.num_heads)))
        if any(d < 1 for d in self.depths):
            problems.append(Words("config_depths", depths=tuple(self.depths)))
        for stage, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**stage
            if heads < 1 or dim % heads:
                problems.append(Words("config_heads", stage=stage, heads=heads, dim=dim))
        if self.mlp_ratio <= 0:
            problems.append(Words("config_mlp_ratio", value=self.mlp_ratio))
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(Words("config_rate", name=name, value=getattr(self, name)))
        if self.shift_order not in SHIFT_ORDERS:
            problems.append(Words("config_shift_order", value=repr(self.shift_order)[:40],
                                  choices=", ".join(SHIFT_ORDERS)))
        problems.extend(self._version_problems())
        if problems:
            raise UserError.of("config_invalid", problems=Listed(problems))

    def _version_problems(self) -> list[Words]:
        """What does not fit the generation: V2's pretrained windows, and windows of one token (V2
        divides the relative coordinates by the window's side minus one)."""
        if not _is_int(self.version) or self.version not in (1, 2):
            return [Words("config_version", value=repr(self.version)[:20])]
        problems = []
        pretrained = self.pretrained_window_sizes
        if pretrained and (self.version == 1 or len(pretrained) != len(self.depths)
                           or any(not isinstance(size, int) or isinstance(size, bool) or size == 1
                                  or not 0 <= size <= 64 for size in pretrained)):
            problems.append(Words("config_pretrained_windows", sizes=tuple(pretrained)[:8]))
        elif self.version == 2 and self.depths and len(self.depths) == len(self.num_heads):
            for stage in range(len(self.depths)):
                if self.stage_window(stage)[0] == 1 and not self.pretrained_window(stage):
                    problems.append(Words("config_v2_window_one", stage=stage + 1))
        return problems

    def pretrained_window(self, stage: int) -> int:
        """V2: the window whose side normalises the stage's relative coordinates (0: its own)."""
        return self.pretrained_window_sizes[stage] if self.pretrained_window_sizes else 0

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
        its bias table (with ``always_partition`` every stage keeps the window).
        Whether a block really shifts is ``stage_shift``: by default decided per
        forward, never along an axis that holds one window, so at ``img_size`` a
        map no larger than the window is not shifted (the official rule), while a
        larger input may shift it (as torchvision does).
        """
        if self.always_partition:
            return self.window_size, self.window_size // 2
        window = max(1, min(self.stage_resolution(stage), self.window_size))
        return window, window // 2

    def stage_shift(self, stage: int, padded_h: int, padded_w: int) -> tuple[int, int]:
        """(shift along H, shift along W) of the stage's SW-MSA blocks on a map padded to
        ``padded_h`` x ``padded_w``.

        ``pad_then_roll`` decides per forward: an axis that holds a single window is not rolled
        (``geometry.runtime_shift``, torchvision's rule). ``roll_then_pad`` decides as timm does
        when it builds a block: the stage shifts when its map at ``img_size`` is larger than the
        window, whatever the input. ``always_partition`` always shifts.
        """
        window, shift = self.stage_window(stage)
        if self.always_partition:
            return shift, shift
        if self.shift_order == ROLL_THEN_PAD:
            built = shift if self.stage_resolution(stage) > window else 0
            return built, built
        return runtime_shift(padded_h, padded_w, window, shift)

    def rolled_size(self, stage: int, H: int, W: int) -> tuple[int, int]:
        """(height, width) of what the cyclic shift rolls for the stage's H x W map: the map padded
        to whole windows (``pad_then_roll``), or the map itself (``roll_then_pad``, padded after)."""
        if self.shift_order == ROLL_THEN_PAD:
            return H, W
        window = self.stage_window(stage)[0]
        return padded_size(H, window), padded_size(W, window)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON data (tuples as lists); a new dict each call."""
        data = dict(_as_dict(self))
        data["depths"] = list(self.depths)
        data["num_heads"] = list(self.num_heads)
        data["pretrained_window_sizes"] = list(self.pretrained_window_sizes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwinConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError.of("config_unknown_fields", fields=", ".join(unknown))
        values = dict(data)
        for name in ("depths", "num_heads", "pretrained_window_sizes"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


_INTEGER_FIELDS = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "window_size")
_NUMBER_FIELDS = ("mlp_ratio", "drop_rate", "attn_drop_rate", "drop_path_rate")
_FLAG_FIELDS = ("qkv_bias", "patch_norm", "always_partition")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_problems(config: SwinConfig) -> list[Words]:
    """Each field of the type the model computes with: whole numbers where it counts (a 32.0 or a
    "32" from a trace would reach ``range()``), finite numbers, true or false."""
    problems = []
    for name in _INTEGER_FIELDS:
        if not _is_int(getattr(config, name)):
            problems.append(Words("config_not_integer", name=name, value=repr(getattr(config, name))[:40]))
    for name in ("depths", "num_heads"):
        value = getattr(config, name)
        if not isinstance(value, tuple) or not all(_is_int(item) for item in value):
            problems.append(Words("config_not_integers", name=name, value=repr(value)[:40]))
    for name in _NUMBER_FIELDS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(Words("config_not_number", name=name, value=repr(value)[:40]))
    scale = config.qk_scale
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not math.isfinite(scale)):
        problems.append(Words("config_not_number", name="qk_scale", value=repr(scale)[:40]))
    for name in _FLAG_FIELDS:
        if not isinstance(getattr(config, name), bool):
            problems.append(Words("config_not_flag", name=name, value=repr(getattr(config, name))[:40]))
    if not isinstance(config.pretrained_window_sizes, tuple):
        problems.append(Words("config_pretrained_windows", sizes=repr(config.pretrained_window_sizes)[:40]))
    return problems


# The most numbers a checkpoint or an adopted model may hold: twice Swin-L's 197 million, checked
# on declared shapes before anything is allocated (a stride-0 tensor declares billions in bytes).
MAX_PARAMETERS = 400_000_000

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
    # Swin V2 at 256 pixels (microsoft/Swin-Transformer configs/swinv2/*.yaml): window 8, and the
    # window-16 models; their last stage (an 8x8 map) uses it whole as its window.
    "swin_v2_t": SwinConfig(img_size=256, window_size=8, drop_path_rate=0.2, version=2),
    "swin_v2_s": SwinConfig(img_size=256, window_size=8, depths=_SMALL_DEPTHS, drop_path_rate=0.3, version=2),
    "swin_v2_b": SwinConfig(img_size=256, window_size=8, embed_dim=128, depths=_SMALL_DEPTHS,
                            num_heads=(4, 8, 16, 32), drop_path_rate=0.5, version=2),
    "swin_v2_t_w16": SwinConfig(img_size=256, window_size=16, drop_path_rate=0.2, version=2),
    "swin_v2_s_w16": SwinConfig(img_size=256, window_size=16, depths=_SMALL_DEPTHS, drop_path_rate=0.3, version=2),
    "swin_v2_b_w16": SwinConfig(img_size=256, window_size=16, embed_dim=128, depths=_SMALL_DEPTHS,
                                num_heads=(4, 8, 16, 32), drop_path_rate=0.5, version=2),
    # The teaching variant as a Swin V2: the same shape, V2's blocks.
    "swin_v2_teach": SwinConfig(
        img_size=32, num_classes=10, embed_dim=8, depths=(2, 2, 2), num_heads=(2, 2, 4), window_size=2,
        mlp_ratio=2.0, drop_path_rate=0.1, version=2,
    ),
}


# The names the ecosystem gives our variants -> (our variant, whether the weights that name
# publishes are the ones our named weights are). timm's defaults for the large and 384 models
# are the official ImageNet-22k-then-1k release, as ours; for tiny, small and base timm and
# Hugging Face publish the official ImageNet-1k release, ours are torchvision's retraining.
ALIASES: dict[str, tuple[str, bool]] = {
    "swin_tiny_patch4_window7_224": ("swin_t", False),
    "swin_small_patch4_window7_224": ("swin_s", False),
    "swin_base_patch4_window7_224": ("swin_b", False),
    "swin_large_patch4_window7_224": ("swin_l", True),
    "swin_base_patch4_window12_384": ("swin_b_384", True),
    "swin_large_patch4_window12_384": ("swin_l_384", True),
    "microsoft/swin-tiny-patch4-window7-224": ("swin_t", False),
    "microsoft/swin-small-patch4-window7-224": ("swin_s", False),
    "microsoft/swin-base-patch4-window7-224": ("swin_b", False),
    "microsoft/swin-large-patch4-window7-224": ("swin_l", False),
    "microsoft/swin-base-patch4-window12-384": ("swin_b_384", False),
    "microsoft/swin-large-patch4-window12-384": ("swin_l_384", False),
    # Swin V2: timm and Hugging Face publish the official releases; ours for window 8 are torchvision's.
    "swinv2_tiny_window8_256": ("swin_v2_t", False),
    "swinv2_small_window8_256": ("swin_v2_s", False),
    "swinv2_base_window8_256": ("swin_v2_b", False),
    "swinv2_tiny_window16_256": ("swin_v2_t_w16", True),
    "swinv2_small_window16_256": ("swin_v2_s_w16", True),
    "swinv2_base_window16_256": ("swin_v2_b_w16", True),
    "microsoft/swinv2-tiny-patch4-window8-256": ("swin_v2_t", False),
    "microsoft/swinv2-small-patch4-window8-256": ("swin_v2_s", False),
    "microsoft/swinv2-base-patch4-window8-256": ("swin_v2_b", False),
    "microsoft/swinv2-tiny-patch4-window16-256": ("swin_v2_t_w16", False),
    "microsoft/swinv2-small-patch4-window16-256": ("swin_v2_s_w16", False),
    "microsoft/swinv2-base-patch4-window16-256": ("swin_v2_b_w16", False),
}


def config_too_large(config: SwinConfig) -> str:
    """What makes ``config`` larger than a model this tool traces ('' when nothing does): the
    largest variant at 4096 pixels fits, with room. Trace validation and ``from_model`` share it."""
    limits = (("img_size", config.img_size, 4096), ("embed_dim", config.embed_dim, 1024),
              ("blocks", sum(config.depths), 96), ("stages", config.num_stages, 8),
              ("window_size", config.window_size, 64), ("num_classes", config.num_classes, 100_000),
              ("num_heads", max(config.num_heads), 1024), ("mlp_ratio", config.mlp_ratio, 16),
              ("patch_size", config.patch_size, 64), ("in_chans", config.in_chans, 64))
    return next((f"{name} {value} > {limit}" for name, value, limit in limits if value > limit), "")


# timm names a model's weights by a tag after a dot (``swin_large_patch4_window7_224.ms_in22k_ft_in1k``).
# Our named weights of swin_l, swin_b_384 and swin_l_384 are this tag's (the official ImageNet-22k-then-1k
# release); no timm tag publishes torchvision's retraining that ours of swin_t, swin_s and swin_b are.
TIMM_TAG_OF_OURS = "ms_in22k_ft_in1k"
# Those of the window-16 Swin V2 are the official ImageNet-1k release, timm's ``ms_in1k``.
TIMM_TAG_OF_OURS_V2 = "ms_in1k"


def resolve_name(name: str) -> tuple[str, bool]:
    """(our variant, whether the weights the name publishes are ours) for one of a variant's names:
    ours (``swin_t``), timm's with or without its weights' tag (``swin_tiny_patch4_window7_224.ms_in1k``),
    Hugging Face's (``microsoft/swin-tiny-patch4-window7-224``); any case."""
    key = name.strip().lower()
    if key in VARIANTS:
        return key, True
    if key in ALIASES:
        return ALIASES[key]
    base, dot, tag = key.partition(".")
    if dot and "/" not in base and base in ALIASES and tag:
        variant, ours_by_default = ALIASES[base]
        return variant, ours_by_default and tag == (TIMM_TAG_OF_OURS_V2 if VARIANTS[variant].version == 2
                                                    else TIMM_TAG_OF_OURS)
    names = [*VARIANTS, *ALIASES]
    # names the key begins (swin_tiny: timm's tiny), then the most alike (a typo), before a tag too
    closest = list(dict.fromkeys([name for name in names if name.startswith(key)]
                                 + difflib.get_close_matches(key, names, n=3, cutoff=0.6)
                                 + difflib.get_close_matches(base, names, n=3, cutoff=0.6)))[:3]
    if closest:
        raise UserError.of("unknown_variant_close", variant=repr(name)[:80], closest=", ".join(closest),
                           choices=", ".join(VARIANTS))
    raise UserError.of("unknown_variant", variant=repr(name)[:80], choices=", ".join(VARIANTS))


def variant_of(name: str) -> str:
    """Our variant for one of its names (``swin_t``, a timm name with or without its tag, a Hugging Face
    id; any case). An unknown name is told with the closest known ones."""
    return resolve_name(name)[0]


def get_config(variant: str, **overrides: Any) -> SwinConfig:
    """The named variant's config (any of its names) with ``overrides`` applied."""
    variant = variant_of(variant) if isinstance(variant, str) else variant
    if variant not in VARIANTS:
        raise UserError.of("unknown_variant", variant=repr(variant), choices=", ".join(VARIANTS))
    if not overrides:
        return VARIANTS[variant]
    data = VARIANTS[variant].to_dict()
    data.update(overrides)
    return SwinConfig.from_dict(data)


@functools.lru_cache(maxsize=32)
def _as_dict(config: SwinConfig) -> dict[str, Any]:
    """``dataclasses.asdict`` of a frozen config, computed once (a trace header needs it every time)."""
    return dataclasses.asdict(config)
