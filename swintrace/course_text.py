"""The course's chapters: which traced steps, pictures and exercises each shows.

Each chapter names the traced steps it shows (regular expressions over dotted
ids), the pictures it embeds (by name prefix), whether it shows the stage
table, and its exercises: steps whose shape the reader predicts, numbers read
from the trace, and concept questions. Its title, goal, text and questions are
in the catalog of words (``course.chapters.<slug>``, ``course.numbers``,
``course.concepts``); render/lessons.py computes the facts and answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .words import entry


@dataclass(frozen=True)
class Chapter:
    slug: str
    steps: tuple[str, ...] = ()  # regular expressions over step ids shown as the live trace
    pictures: tuple[str, ...] = ()  # picture name prefixes
    shapes: tuple[str, ...] = ()  # step ids whose first tensor's shape the reader predicts
    numbers: tuple[str, ...] = ()  # number questions (course.numbers.<key>)
    concepts: tuple[str, ...] = ()  # concept questions (course.concepts.<key>)
    table: bool = False  # the table of stages
    gradients: tuple[str, ...] = ()  # regular expressions over the ids of the backward's events it shows

    def title(self, lang: str) -> str:
        return entry(lang, f"course.chapters.{self.slug}.title")

    def goal(self, lang: str) -> str:
        return entry(lang, f"course.chapters.{self.slug}.goal")

    def text(self, lang: str, version: int = 1, learned: str = "train_step") -> str:
        """The chapter's Markdown for a trace of Swin ``version``: a V1 course reads a chapter's
        ``companion`` text where it has one (From V1 to V2), a V2 course its ``v2_note`` first.

        ``learned`` says what the trace holds of learning ("", "backward" or "train_step"): a chapter
        with ``without_backward`` words reads them when it holds nothing, and gets its
        ``train_step`` words after its text when the trace took a training step (How Swin learns)."""
        words = entry(lang, f"course.chapters.{self.slug}")
        if "without_backward" in words:
            if not learned:
                return words["without_backward"]
            return f"{words['text']}\n\n{words['train_step']}" if learned == "train_step" else words["text"]
        if version == 1:
            return words.get("companion", words["text"])
        return f"> {words['v2_note']}\n\n{words['text']}" if "v2_note" in words else words["text"]


def chapters_of_scope(scope_kind: str, scope_id: str = "") -> list[tuple[int, Chapter]]:
    """(number from 1, chapter) of every chapter that teaches a scope kind, in course order.

    SW-MSA is taught at a shifted block (an odd index in its stage), not at every block.
    """
    slugs = set(_SCOPE_CHAPTERS.get(scope_kind, ()))
    if not re.search(r"\.blocks\.\d*[13579]$", scope_id):
        slugs.discard("sw-msa")
    return [(number, chapter) for number, chapter in enumerate(CHAPTERS, start=1) if chapter.slug in slugs]


_BLOCK0 = "layers.0.blocks.0"
_BLOCK1 = "layers.0.blocks.1"

CHAPTERS: tuple[Chapter, ...] = (
    Chapter("overview", pictures=("stage_story", "teach_classes"), concepts=("why_shift_pairs",), table=True),
    Chapter("patch-embedding", steps=(r"patch_embed\..*",), shapes=("patch_embed.patch_proj", "patch_embed.flatten")),
    Chapter(
        "window-partition",
        steps=(rf"{_BLOCK0}\.window_partition\..*", rf"{_BLOCK0}\.partition_windows", rf"{_BLOCK0}\.window_reverse\..*"),
        pictures=("windows_stage1",),
        shapes=(f"{_BLOCK0}.window_partition.view", f"{_BLOCK0}.window_partition.permute"),
        numbers=("windows1",), concepts=("why_windows",),
    ),
    Chapter(
        "w-msa", steps=(rf"{_BLOCK0}\.attn\..*",),
        shapes=(f"{_BLOCK0}.attn.qkv", f"{_BLOCK0}.attn.scores", f"{_BLOCK0}.attn.attn_v"),
    ),
    Chapter(
        "relative-position-bias",
        steps=(r"relative_position_index\..*", rf"{_BLOCK1}\.attn\.bias_gather", rf"{_BLOCK1}\.attn\.bias_permute",
               rf"{_BLOCK1}\.attn\.add_bias"),
        pictures=("bias_",), shapes=(f"{_BLOCK1}.attn.bias_permute",),
        numbers=("index_row",), concepts=("why_relative_bias",),
    ),
    Chapter(
        "cyclic-shift-and-mask",
        steps=(r"layers\.0\.create_mask\..*", rf"{_BLOCK1}\.cyclic_shift", rf"{_BLOCK1}\.reverse_shift"),
        pictures=("shift_stage1", "mask_stage1"), shapes=("layers.0.create_mask.mask_windows",),
        numbers=("region_corner", "masked1"), concepts=("why_minus_100", "why_roll_back", "why_last_stage_unshifted"),
    ),
    Chapter(
        "sw-msa",
        steps=(rf"{_BLOCK1}\.attn\.mask_matrix", rf"{_BLOCK1}\.attn\.add_mask", rf"{_BLOCK1}\.attn\.mask_view",
               rf"{_BLOCK1}\.attn\.softmax", rf"{_BLOCK1}\.attention"),
        pictures=("attention_",), shapes=(f"{_BLOCK1}.attn.add_mask",),
    ),
    Chapter(
        "swin-block",
        steps=(rf"{_BLOCK0}\.(shortcut|norm1|residual|norm2|mlp_residual)", rf"{_BLOCK0}\.mlp\..*"),
        shapes=(f"{_BLOCK0}.mlp.fc1",),
    ),
    Chapter(
        "patch-merging", steps=(r"layers\.0\.downsample\..*",), pictures=("patch_merging",),
        shapes=("layers.0.downsample.cat", "layers.0.downsample.reduction"),
        numbers=("stage2_tokens",), concepts=("why_merge_doubles",),
    ),
    Chapter("reach", steps=(r"layers\.\d+\.output",), pictures=("spread",), numbers=("reach_after_sw", "corners_meet"),
            concepts=("why_reach_grows",)),
    Chapter(
        "classification-head", steps=(r"forward_head\..*", "topk"), pictures=("top_predictions",),
        shapes=("forward_head.avgpool", "forward_head.head"),
    ),
    Chapter("shapes", steps=(r"layers\.\d+\.(input|output)",), shapes=("layers.0.downsampled",), table=True),
    # The backward of a V1 course (api/course_trace.py); a course without one says how to get it.
    Chapter(
        "how-swin-learns", steps=(r"forward_head\.head", rf"{_BLOCK1}\.attn\.add_mask"),
        gradients=(r"forward_head\.output", rf"{_BLOCK1}\.attn\.(softmax|scores)",
                   rf"{_BLOCK1}\.attn\.relative_position_bias_table"),
        pictures=("grad_",), numbers=("learn_pairs_row", "learn_masked_pairs"),
        concepts=("why_masked_learns_nothing", "why_table_sums", "why_dropped_no_grad"),
    ),
    # A V2 course's own chapter; a V1 course's companion (what V2 changes, and how to trace it).
    Chapter(
        "v1-to-v2",
        steps=(rf"{_BLOCK1}\.attn\.(qkv_bias|scale|scores|normalize_qk|cosine|logit_scale|scale_cosine|cpb_mlp|bias_sigmoid)",
               rf"{_BLOCK1}\.attn\.relative_coords_table\..*", rf"{_BLOCK0}\.(norm1|residual|mlp_residual|mlp_post_residual)",
               r"layers\.0\.downsample\.(reduction|norm)"),
        pictures=("v2_",), numbers=("cpb_parameters", "coords_largest_x1000"),
        concepts=("why_cosine", "why_log_coords", "why_post_norm", "why_no_key_bias"),
    ),
)

# The chapters that teach each scope kind (reports link a scope's first appearance to each):
# every chapter has a scope, so a report made with --course links all of them.
_SCOPE_CHAPTERS: dict[str, tuple[str, ...]] = {
    "PatchEmbed": ("patch-embedding",),
    "window_partition": ("window-partition",),
    "window_reverse": ("window-partition",),
    "WindowAttention": ("w-msa", "relative-position-bias"),
    "relative_position_index": ("relative-position-bias",),
    "create_mask": ("cyclic-shift-and-mask",),
    "SwinTransformerBlock": ("swin-block", "sw-msa", "v1-to-v2"),
    "relative_coords_table": ("v1-to-v2",),
    "Mlp": ("swin-block",),
    "PatchMerging": ("patch-merging",),
    "forward_head": ("classification-head", "how-swin-learns"),
    "BasicLayer": ("overview", "reach", "shapes"),
}
