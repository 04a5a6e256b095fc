"""One vocabulary: step kinds -> colors and heading levels; their words are in the catalog.

The Chinese titles (words.py) are the seed walkthrough's own wording where it has one.
Colors are chosen by family, so that the eye learns them: pink for inputs,
orange for outputs, blue for reshapes, green for attention arithmetic, red for
masks and shifts, purple for position bias, amber for residual paths, teal for
normalisation and linear layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .palette import AMBER, BLUE, CYAN, GREEN, LIME, ORANGE, PINK, PURPLE, RED
from .words import catalog, say_safely


@dataclass(frozen=True)
class StepStyle:
    """How a step kind looks: its color, and where the walkthrough announces it."""

    color: str
    # Where the walkthrough announces the step when its code ran scopes of its
    # own (a loop over blocks, a call into DropPath): None, at the step only;
    # 0, its title before those scopes and nothing more at the step; N >= 1, a
    # level-N heading before them and the title (or the end title) at the step.
    lead_level: int | None = None


STEPS: dict[str, StepStyle] = {
    "input": StepStyle(PINK),
    "output": StepStyle(ORANGE),
    "view": StepStyle(BLUE),
    "permute": StepStyle(BLUE),
    "norm": StepStyle(CYAN),
    "pos_drop": StepStyle(CYAN),
    "layers_loop": StepStyle(AMBER, 1),
    "final_norm": StepStyle(CYAN),
    "avgpool": StepStyle(BLUE),
    "head_flatten": StepStyle(BLUE),
    "head": StepStyle(GREEN),
    "topk": StepStyle(ORANGE),
    "patch_pad": StepStyle(AMBER),
    "patch_proj": StepStyle(LIME),
    "flatten": StepStyle(BLUE),
    "create_mask": StepStyle(RED),
    "mask_regions": StepStyle(RED),
    "mask_windows": StepStyle(RED),
    "mask_fill": StepStyle(RED),
    "blocks_loop": StepStyle(AMBER, 2),
    "downsample": StepStyle(LIME, 2),
    "shortcut": StepStyle(AMBER),
    "window_pad": StepStyle(AMBER),
    "cyclic_shift": StepStyle(RED),
    "partition_windows": StepStyle(BLUE, 0),
    "w_msa": StepStyle(GREEN),
    "sw_msa": StepStyle(GREEN),
    "merge_view": StepStyle(BLUE),
    "merge_windows": StepStyle(BLUE),
    "reverse_shift": StepStyle(RED),
    "crop": StepStyle(AMBER),
    "residual": StepStyle(AMBER, 0),
    "mlp_residual": StepStyle(AMBER),
    "qkv": StepStyle(GREEN),
    "unbind": StepStyle(GREEN),
    "scale": StepStyle(GREEN),
    "scores": StepStyle(GREEN),
    "bias_gather": StepStyle(PURPLE),
    "bias_permute": StepStyle(PURPLE),
    "add_bias": StepStyle(PURPLE),
    "mask_matrix": StepStyle(RED),
    "add_mask": StepStyle(RED),
    "mask_view": StepStyle(BLUE),
    "softmax": StepStyle(GREEN),
    "attn_drop": StepStyle(CYAN),
    "attn_v": StepStyle(GREEN),
    "proj": StepStyle(LIME),
    "proj_drop": StepStyle(CYAN),
    "batch": StepStyle(BLUE),
    "fc1": StepStyle(LIME),
    "act": StepStyle(GREEN),
    "dropout": StepStyle(CYAN),
    "fc2": StepStyle(LIME),
    "merge_pad": StepStyle(AMBER),
    "gather": StepStyle(BLUE),
    "cat": StepStyle(BLUE),
    "reduction": StepStyle(LIME),
    # Swin V2's attention: scaled cosine, continuous position bias, res-post-norm
    "qkv_bias": StepStyle(GREEN),
    "normalize_qk": StepStyle(GREEN),
    "cosine": StepStyle(GREEN),
    "logit_scale": StepStyle(GREEN),
    "scale_cosine": StepStyle(GREEN),
    "cpb_mlp": StepStyle(PURPLE),
    "bias_sigmoid": StepStyle(PURPLE),
    "post_norm": StepStyle(CYAN),
    "mlp_post_residual": StepStyle(AMBER),
    # relative_coords_table (built with a V2 model; a traced V2 forward shows it)
    "coords_offsets": StepStyle(PURPLE),
    "coords_normalize": StepStyle(PURPLE),
    # relative_position_index (runs when the model is built; the course traces it)
    "index_coords": StepStyle(PURPLE),
    "index_flatten": StepStyle(BLUE),
    "index_offsets": StepStyle(PURPLE),
    "index_shift": StepStyle(PURPLE),
    "index_rows": StepStyle(PURPLE),
}

# Heading level of each scope kind, as the seed nests them.
SCOPE_LEVELS: dict[str, int] = {
    "SwinTransformer": 1,
    "SwinTransformerV2": 1,
    "PatchEmbed": 1,
    "BasicLayer": 1,
    "forward_head": 1,
    "SwinTransformerBlock": 2,
    "create_mask": 2,
    "PatchMerging": 2,
    "WindowAttention": 3,
    "window_partition": 3,
    "window_reverse": 3,
    "Mlp": 3,
    "DropPath": 3,
    "drop_path_f": 4,
    "relative_position_index": 2,
    "relative_coords_table": 4,
}

# Scopes announced by one heading of their own instead of "<name> begins/ends"
# (their words: the catalog's scopes.titles).
TITLED_SCOPES = frozenset({"create_mask", "forward_head"})
# Scopes whose docstring the walkthrough shows under the heading (words: scopes.docs).
DOCUMENTED_SCOPES = frozenset({"BasicLayer", "window_partition", "window_reverse"})
# The reference walkthrough writes these headings without a space: "drop_path_f开始".
TIGHT_ZH_HEADINGS = frozenset({"drop_path_f"})


# Each color is a family of steps; reports name the family beside the color (report.families).
FAMILIES: dict[str, str] = {
    PINK: "input", ORANGE: "output", BLUE: "reshape", GREEN: "attention", RED: "mask",
    PURPLE: "position", AMBER: "residual", CYAN: "norm", LIME: "linear",
}


# Kinds that share their family's color but not its name: the badge names what the step does.
_NAMED_APART = {
    "patch_pad": "padding", "window_pad": "padding", "merge_pad": "padding", "crop": "padding",
    "pos_drop": "dropout", "attn_drop": "dropout", "proj_drop": "dropout", "dropout": "dropout",
    "cyclic_shift": "shift", "reverse_shift": "shift", "layers_loop": "loop", "blocks_loop": "loop",
}


def family_name_key(kind: str) -> str:
    """The key (``report.families.<key>``) of the word a step's badge shows: its family's, or
    its own where the family's color groups it with steps of another kind (padding with residuals)."""
    return _NAMED_APART.get(kind) or FAMILIES.get(step_style(kind).color, "reshape")


def step_style(kind: str) -> StepStyle:
    """Style of a step kind; unknown kinds (from newer traces) get a neutral entry."""
    return STEPS.get(kind, StepStyle(BLUE))


def step_title(kind: str, lang: str, *, end: bool = False) -> str:
    """The catalog's title of a step kind (its end title with ``end``); unknown kinds: the kind."""
    words = catalog(lang)["steps"].get(kind)
    if words is None:
        return kind
    return words.get("end", words["title"]) if end else words["title"]


def explanation(kind: str, scope_kind: str, lang: str, version: int = 1) -> str | None:
    """What a step of ``kind`` does and why, in its scope (``window_partition.view``) or in general;
    in a Swin V2 (``version`` 2) the catalog's V2 words first (``v2:PatchMerging.norm``)."""
    texts = catalog(lang).get("explain", {})
    keys = [f"{scope_kind}.{kind}", kind]
    if version == 2:
        keys = [f"v2:{key}" for key in keys] + keys
    return next((texts[key] for key in keys if key in texts), None)


def note_text(key: str, lang: str, scalars: dict[str, object]) -> str:
    """The note for a skipped branch in ``lang``, filled from the step's scalars."""
    if key not in catalog(lang)["notes"]:
        return key
    return say_safely(lang, f"notes.{key}", scalars)
