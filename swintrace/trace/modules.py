"""The names a trace's scopes may have: the modules of a Swin V1 or V2, and the traced functions.

Checked against ``named_modules()`` of every variant by tests/test_layers.py, so that the
validator's idea of a model cannot drift from the models.
"""

from __future__ import annotations

from typing import Any

# Scopes opened by traced functions, not modules: their ids extend the enclosing module's.
FUNCTION_SCOPES = frozenset({"window_partition", "window_reverse", "create_mask", "forward_head", "drop_path_f",
                              "relative_position_index", "relative_coords_table"})


# The dotted module names of a Swin Transformer V1 with its numbers written N.
MODULE_PATTERNS_V1 = frozenset({
    "", "patch_embed", "patch_embed.proj", "patch_embed.norm", "pos_drop", "layers", "layers.N",
    "layers.N.blocks", "layers.N.blocks.N", "layers.N.blocks.N.norm1", "layers.N.blocks.N.attn",
    "layers.N.blocks.N.attn.qkv", "layers.N.blocks.N.attn.attn_drop", "layers.N.blocks.N.attn.proj",
    "layers.N.blocks.N.attn.proj_drop", "layers.N.blocks.N.attn.softmax", "layers.N.blocks.N.drop_path",
    "layers.N.blocks.N.norm2", "layers.N.blocks.N.mlp", "layers.N.blocks.N.mlp.fc1",
    "layers.N.blocks.N.mlp.act", "layers.N.blocks.N.mlp.drop1", "layers.N.blocks.N.mlp.fc2",
    "layers.N.blocks.N.mlp.drop2", "layers.N.downsample", "layers.N.downsample.reduction",
    "layers.N.downsample.norm", "norm", "avgpool", "head",
})
# Swin V2 adds the position-bias MLP of every block's attention.
MODULE_PATTERNS_V2 = MODULE_PATTERNS_V1 | {
    "layers.N.blocks.N.attn.cpb_mlp", "layers.N.blocks.N.attn.cpb_mlp.N",
}


def module_patterns(config: Any) -> frozenset[str]:
    """The module names (numbers written N) of a model of ``config``'s generation."""
    return MODULE_PATTERNS_V2 if config.version == 2 else MODULE_PATTERNS_V1


def is_module_name(name: str, config: Any) -> bool:
    """Whether ``name`` is the dotted name of a module of a model with ``config`` (no torch needed)."""
    parts = name.split(".")
    if ".".join("N" if part.isdigit() else part for part in parts) not in module_patterns(config):
        return False
    if len(parts) < 2 or parts[0] != "layers":
        return True
    stage = int(parts[1])
    if stage >= config.num_stages:
        return False
    if len(parts) >= 4 and parts[2] == "blocks":
        return int(parts[3]) < config.depths[stage]
    return not (len(parts) >= 3 and parts[2] == "downsample" and stage == config.num_stages - 1)
