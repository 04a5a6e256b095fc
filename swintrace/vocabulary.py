"""One vocabulary: step kinds -> titles (English, Chinese) and colors; note keys -> text.

The Chinese titles are the seed walkthrough's own wording where it has one.
Colors are chosen by family, so that the eye learns them: pink for inputs,
orange for outputs, blue for reshapes, green for attention arithmetic, red for
masks and shifts, purple for position bias, amber for residual paths, teal for
normalisation and linear layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .palette import AMBER, BLUE, CYAN, GREEN, LIME, ORANGE, PINK, PURPLE, RED


@dataclass(frozen=True)
class StepWords:
    en: str
    zh: str
    color: str
    # Where the walkthrough announces the step when its code ran scopes of its
    # own (a loop over blocks, a call into DropPath): None, at the step only;
    # 0, its title before those scopes and nothing more at the step; N >= 1, a
    # level-N heading before them and the title (or the end title) at the step.
    lead_level: int | None = None
    # Title at the step when it differs from the lead ("END: for blk ...").
    end_en: str | None = None
    end_zh: str | None = None

    def title(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def end_title(self, lang: str) -> str:
        end = self.end_zh if lang == "zh" else self.end_en
        return end or self.title(lang)


STEPS: dict[str, StepWords] = {
    # everywhere
    "input": StepWords("Input", "输入", PINK),
    "output": StepWords("Output", "输出", ORANGE),
    "view": StepWords("view", "view操作", BLUE),
    "permute": StepWords("permute", "permute操作", BLUE),
    "norm": StepWords("LayerNorm", "norm操作", CYAN),
    # model
    "pos_drop": StepWords("Dropout after the embedding", "位置dropout操作", CYAN),
    "layers_loop": StepWords(
        "for layer in self.layers", "for layer in self.layers", AMBER, 1,
        "END: for layer in self.layers", "END: for layer in self.layers",
    ),
    "final_norm": StepWords("Final LayerNorm", "层归一化", CYAN),
    "avgpool": StepWords("Average pooling over tokens", "平均池化", BLUE),
    "head_flatten": StepWords("Flatten", "打平", BLUE),
    "head": StepWords("Classification head", "分类头", GREEN),
    "topk": StepWords("Top-k predictions", "Top-k预测", ORANGE),
    # patch embedding
    "patch_pad": StepWords("Pad to a multiple of the patch size", "padding操作", AMBER),
    "patch_proj": StepWords("Patch projection (downsample by patch_size)", "下采样patch_size倍", LIME),
    "flatten": StepWords("Flatten and transpose to tokens", "变换操作", BLUE),
    # stage
    "create_mask": StepWords("Create the attention mask", "创建mask", RED),
    "mask_regions": StepWords("Number the regions of the shifted map", "给shift后的区域编号", RED),
    "mask_windows": StepWords("Region ids per window", "每个window的区域编号", RED),
    "mask_fill": StepWords("0 within a region, -100 across regions", "同区域为0，不同区域为-100", RED),
    "blocks_loop": StepWords(
        "for blk in self.blocks:", "for blk in self.blocks:", AMBER, 2,
        "END: for blk in self.blocks:", "END: for blk in self.blocks:",
    ),
    "downsample": StepWords("Downsample (patch merging)", "downsample操作", LIME, 2),
    # block
    "shortcut": StepWords("Keep the input for the residual", "保存输入便于做残差连接", AMBER),
    "window_pad": StepWords("Pad to a multiple of the window size", "把feature map给pad到window size的整数倍", AMBER),
    "cyclic_shift": StepWords("Cyclic shift", "cyclic shift", RED),
    "partition_windows": StepWords("Partition windows", "partition windows", BLUE, 0),
    "w_msa": StepWords("W-MSA: attention within windows", "W-MSA/SW-MSA", GREEN),
    "sw_msa": StepWords("SW-MSA: attention within shifted windows", "W-MSA/SW-MSA", GREEN),
    "merge_view": StepWords("Merge windows (window_reverse)", "merge windows（window_reverse）", BLUE),
    "merge_windows": StepWords("Windows back to a feature map", "还原成feature map", BLUE),
    "reverse_shift": StepWords("Reverse cyclic shift", "reverse cyclic shift", RED),
    "crop": StepWords("Crop the window padding", "去掉pad的部分", AMBER),
    "residual": StepWords("Residual connection", "残差连接", AMBER, 0),
    "mlp_residual": StepWords("MLP with residual connection", "MLP残差连接", AMBER),
    # window attention
    "qkv": StepWords("q, k, v projection", "qkv操作", GREEN),
    "unbind": StepWords("Split q, k, v", "qkv操作", GREEN),
    "scale": StepWords("q = q * self.scale", "q = q * self.scale", GREEN),
    "scores": StepWords("Similarity scores q @ k^T", "计算q和k相似性的得分", GREEN),
    "bias_gather": StepWords("Look up the relative position bias", "查表得到relative_position_bias", PURPLE),
    "bias_permute": StepWords("relative_position_bias per head", "relative_position_bias", PURPLE),
    "add_bias": StepWords("Add the bias to the scores", "attn加上bias操作", PURPLE),
    "mask_matrix": StepWords("The mask matrix", "mask矩阵", RED),
    "add_mask": StepWords("Add the mask", "mask操作", RED),
    "mask_view": StepWords("attn.view", "attn.view", BLUE),
    "softmax": StepWords("Softmax: attention weights", "计算相似性权重", GREEN),
    "attn_drop": StepWords("Attention dropout", "drop操作", CYAN),
    "attn_v": StepWords("Weights @ v, heads side by side", "相似性得分乘v加堆叠多头操作", GREEN),
    "proj": StepWords("Output projection", "投影操作", LIME),
    "proj_drop": StepWords("Projection dropout", "投影dropout操作", CYAN),
    # window_reverse
    "batch": StepWords("Batch size from the window count", "由window数求batch大小", BLUE),
    # mlp
    "fc1": StepWords("fc1: widen", "fc1操作", LIME),
    "act": StepWords("GELU activation", "GELU激活", GREEN),
    "dropout": StepWords("Dropout", "dropout操作", CYAN),
    "fc2": StepWords("fc2: back to C channels", "fc2操作", LIME),
    # patch merging
    "merge_pad": StepWords("Pad to even height and width", "pad操作", AMBER),
    "gather": StepWords("Take the 2x2 neighbours x0..x3", "PatchMerging取元素操作", BLUE),
    "cat": StepWords("Concatenate to 4C channels", "cat操作", BLUE),
    "reduction": StepWords("Reduce 4C to 2C channels", "reduction操作", LIME),
}

# Heading level of each scope kind, as the seed nests them.
SCOPE_LEVELS: dict[str, int] = {
    "SwinTransformer": 1,
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
}

# Scopes announced by one heading of their own instead of "<name> begins/ends".
SCOPE_TITLES: dict[str, tuple[str, str]] = {
    "create_mask": ("Create the mask: self.create_mask(x, H, W)", "创建mask：self.create_mask(x, H, W)"),
    "forward_head": ("Classification head", "分类头操作"),
}

# Words around scope headings.
BEGIN = {"en": "begins", "zh": "开始"}
END = {"en": "ends", "zh": "结束"}

# Notes on skipped branches, formatted with the step's scalars.
NOTES: dict[str, tuple[str, str]] = {
    "no_patch_pad": (
        "H and W are multiples of the patch size {patch_size}: no padding.",
        "H和W已是patch_size {patch_size} 的整数倍：无需padding。",
    ),
    "no_window_pad": (
        "{H}x{W} is a multiple of the window size {window_size}: no padding, nothing to crop.",
        "{H}x{W} 已是window size {window_size} 的整数倍：无需pad，也无需裁剪。",
    ),
    "no_shift": (
        "W-MSA block (or a map of one window): no cyclic shift, no mask.",
        "W-MSA（或只有一个window）：不做cyclic shift，没有mask。",
    ),
    "no_mask": ("No mask: plain window attention.", "mask为None：普通的窗口注意力。"),
    "no_mask_needed": (
        "The {Hp}x{Wp} map is one window of {window_size} (official rule): no shift, so no mask.",
        "{Hp}x{Wp} 的feature map只有一个 {window_size} 的window（官方规则）：不shift，不需要mask。",
    ),
    "even_no_pad": ("{H}x{W} is even: no padding.", "{H}x{W} 是偶数：无需pad。"),
    "no_patch_norm": ("patch_norm is off: no LayerNorm.", "patch_norm关闭：没有LayerNorm。"),
    "drop_path_identity": (
        "Eval mode or drop_prob 0 ({drop_prob:.3f}): the branch passes unchanged.",
        "eval模式或drop_prob为0（{drop_prob:.3f}）：分支原样通过。",
    ),
}


def step_words(kind: str) -> StepWords:
    """Words of a step kind; unknown kinds (from newer traces) get a neutral entry."""
    return STEPS.get(kind, StepWords(kind, kind, BLUE))


def note_text(key: str, lang: str, scalars: dict[str, object]) -> str:
    """The note for a skipped branch in ``lang``, filled from the step's scalars."""
    if key not in NOTES:
        return key
    en, zh = NOTES[key]
    try:
        return (zh if lang == "zh" else en).format(**scalars)
    except (KeyError, ValueError, IndexError):
        return zh if lang == "zh" else en
