"""The course's chapters: which traced steps, pictures and exercises each shows.

Each chapter names the traced steps it shows (regular expressions over dotted
ids, first forward), the pictures it embeds (by name prefix) and the exercises
it asks (steps whose output shape the reader predicts). Its title and text are
in the catalog of words (``course.chapters.<slug>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .words import entry


@dataclass(frozen=True)
class Chapter:
    slug: str
    steps: tuple[str, ...]  # regular expressions over step ids shown as the live trace
    pictures: tuple[str, ...]  # picture name prefixes
    exercises: tuple[str, ...]  # step ids whose first tensor's shape is the answer

    def title(self, lang: str) -> str:
        return entry(lang, f"course.chapters.{self.slug}.title")

    def text(self, lang: str) -> str:
        return entry(lang, f"course.chapters.{self.slug}.text")


def chapter_of_scope(scope_kind: str) -> tuple[int, Chapter] | None:
    """(number from 1, chapter) of the chapter that teaches a scope kind, or None."""
    slug = _SCOPE_CHAPTERS.get(scope_kind)
    for number, chapter in enumerate(CHAPTERS, start=1):
        if chapter.slug == slug:
            return number, chapter
    return None


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        "patch-embedding",
        ("patch_embed.*",),
        (),
        ("patch_embed.patch_proj", "patch_embed.flatten"),
    ),
    Chapter(
        "window-partition",
        (
            "layers.0.blocks.0.window_partition.*",
            "layers.0.blocks.0.partition_windows",
            "layers.0.blocks.0.window_reverse.*",
        ),
        ("windows_stage1",),
        (
            "layers.0.blocks.0.window_partition.view",
            "layers.0.blocks.0.window_partition.permute",
            "layers.0.blocks.0.partition_windows",
        ),
    ),
    Chapter(
        "w-msa",
        ("layers.0.blocks.0.attn.*",),
        (),
        ("layers.0.blocks.0.attn.qkv", "layers.0.blocks.0.attn.scores", "layers.0.blocks.0.attn.attn_v"),
    ),
    Chapter(
        "relative-position-bias",
        (
            "layers.0.blocks.1.attn.bias_gather",
            "layers.0.blocks.1.attn.bias_permute",
            "layers.0.blocks.1.attn.add_bias",
        ),
        ("bias_",),
        ("layers.0.blocks.1.attn.bias_permute",),
    ),
    Chapter(
        "cyclic-shift-and-mask",
        ("layers.0.create_mask.*", "layers.0.blocks.1.cyclic_shift", "layers.0.blocks.1.reverse_shift"),
        ("shift_stage1", "mask_stage1"),
        ("layers.0.create_mask.mask_windows", "layers.0.create_mask.mask_fill"),
    ),
    Chapter(
        "sw-msa",
        (
            "layers.0.blocks.1.attn.mask_matrix",
            "layers.0.blocks.1.attn.add_mask",
            "layers.0.blocks.1.attn.mask_view",
            "layers.0.blocks.1.attn.softmax",
            "layers.0.blocks.1.attention",
        ),
        ("attention_",),
        ("layers.0.blocks.1.attn.add_mask", "layers.0.blocks.1.attn.mask_view"),
    ),
    Chapter(
        "patch-merging",
        ("layers.0.downsample.*",),
        ("patch_merging",),
        ("layers.0.downsample.gather", "layers.0.downsample.cat", "layers.0.downsample.reduction"),
    ),
    Chapter(
        "classification-head",
        ("forward_head.*", "topk"),
        ("top_predictions",),
        ("forward_head.avgpool", "forward_head.head_flatten", "forward_head.head"),
    ),
    Chapter(
        "shapes",
        ("layers\\.\\d+\\.(input|output)",),
        ("stage_story",),
        ("layers.0.downsampled", "layers.1.downsampled", "layers.2.downsampled"),
    ),
)

# The chapter that teaches each scope kind (reports link a scope to it).
_SCOPE_CHAPTERS = {
    "PatchEmbed": "patch-embedding",
    "window_partition": "window-partition",
    "window_reverse": "window-partition",
    "WindowAttention": "w-msa",
    "create_mask": "cyclic-shift-and-mask",
    "SwinTransformerBlock": "sw-msa",
    "PatchMerging": "patch-merging",
    "forward_head": "classification-head",
    "BasicLayer": "shapes",
}
