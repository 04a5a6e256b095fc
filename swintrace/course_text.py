"""The course's chapters: what each explains (English and Chinese Markdown) and what it shows.

Each chapter names the traced steps it shows (regular expressions over dotted
ids, first forward),
the pictures it embeds (by name prefix) and the exercises it asks (steps whose
output shape the reader predicts).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    slug: str
    title_en: str
    title_zh: str
    text_en: str
    text_zh: str
    steps: tuple[str, ...]  # regular expressions over step ids shown as the live trace
    pictures: tuple[str, ...]  # picture name prefixes
    exercises: tuple[str, ...]  # step ids whose first tensor's shape is the answer

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en

    def text(self, lang: str) -> str:
        return self.text_zh if lang == "zh" else self.text_en


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(
        "patch-embedding", "Patch embedding", "Patch embedding：把图像切成token",
        "A Swin Transformer does not look at pixels one by one. A convolution whose kernel and stride are "
        "both the **patch size** (4) turns every 4×4 patch of the image into one vector of `embed_dim` "
        "numbers. The map of vectors is then flattened into a list of **tokens** (`B, H·W, C`) and "
        "normalised with LayerNorm. An image whose sides are not multiples of 4 is padded first.",
        "Swin Transformer 不逐个像素地看图像。一个卷积核大小和步长都等于 **patch size**（4）的卷积，把图像中每个 "
        "4×4 的小块变成一个长度为 `embed_dim` 的向量。得到的特征图被展平成 **token** 序列（`B, H·W, C`），"
        "再做 LayerNorm。如果图像的边长不是 4 的倍数，先补零（padding）。",
        ("patch_embed.*",), (), ("patch_embed.patch_proj", "patch_embed.flatten"),
    ),
    Chapter(
        "window-partition", "Window partition", "Window partition：划分窗口",
        "Attention over all 3136 tokens of the first stage would compare every pair: about ten million "
        "pairs. Swin cuts the map into non-overlapping **windows** of M×M tokens (M = 7 for Swin-T) and "
        "lets tokens attend only inside their window. `window_partition` does it with one `view` and one "
        "`permute`: the map `B, H, W, C` becomes `B·nW, M, M, C`, one entry per window. `window_reverse` "
        "undoes it exactly.",
        "如果第一个 stage 的 3136 个 token 两两计算注意力，大约要比较一千万对。Swin 把特征图切成互不重叠的 "
        "M×M **窗口**（Swin-T 中 M = 7），token 只在自己的窗口内做注意力。`window_partition` 只用一次 `view` "
        "和一次 `permute` 就完成划分：`B, H, W, C` 变成 `B·nW, M, M, C`，每个窗口一项。`window_reverse` "
        "可以精确地还原。",
        ("layers.0.blocks.0.window_partition.*", "layers.0.blocks.0.partition_windows",
         "layers.0.blocks.0.window_reverse.*"),
        ("windows_stage1",),
        ("layers.0.blocks.0.window_partition.view", "layers.0.blocks.0.window_partition.permute",
         "layers.0.blocks.0.partition_windows"),
    ),
    Chapter(
        "w-msa", "W-MSA: attention within windows", "W-MSA：窗口内的多头注意力",
        "Inside each window, a linear layer makes **q**, **k** and **v** for every token and every head. "
        "`q @ kᵀ` scores how much each token should look at each other token; the scores are scaled by "
        "`1/√head_dim`, turned into weights by a softmax over each row, and used to mix the **v** vectors. "
        "The heads are put side by side again and projected. All windows of all images are one batch, so "
        "this is ordinary multi-head attention on sequences of M² tokens.",
        "在每个窗口内，一个线性层为每个 token、每个 head 生成 **q**、**k**、**v**。`q @ kᵀ` 给出每个 token "
        "应该关注其他 token 的程度；得分乘以 `1/√head_dim`，每一行经过 softmax 变成权重，再用这些权重加权 "
        "**v**。各个 head 的结果拼接后再做一次投影。所有图像的所有窗口组成一个 batch，所以这就是在长度为 M² "
        "的序列上做普通的多头注意力。",
        ("layers.0.blocks.0.attn.*",), (),
        ("layers.0.blocks.0.attn.qkv", "layers.0.blocks.0.attn.scores", "layers.0.blocks.0.attn.attn_v"),
    ),
    Chapter(
        "relative-position-bias", "Relative position bias", "相对位置偏置",
        "Attention alone does not know where tokens are. Swin adds a learned **bias** that depends only on "
        "the offset between two tokens of a window. Offsets range over (2M−1)² values, so the **table** has "
        "(2M−1)² rows and one column per head. A fixed **index** matrix (M²×M²) says which row each "
        "(query, key) pair uses. For M = 2 the index is `[[4,3,1,0],[5,4,2,1],[7,6,4,3],[8,7,5,4]]`: the "
        "top-left token reads rows 4, 5, 7, 8 down its column, and every diagonal entry is the centre row 4 "
        "(offset zero).",
        "仅靠注意力并不知道 token 在哪里。Swin 额外加上一个可学习的**偏置**，它只取决于窗口中两个 token 的相对位置。"
        "相对位置共有 (2M−1)² 种，所以**偏置表**有 (2M−1)² 行、每个 head 一列。一个固定的**索引**矩阵（M²×M²）"
        "指出每一对 (query, key) 用表中的哪一行。M = 2 时索引为 `[[4,3,1,0],[5,4,2,1],[7,6,4,3],[8,7,5,4]]`："
        "左上角的 token 沿它那一列用到第 4、5、7、8 行，对角线上都是中心行 4（相对位置为零）。",
        ("layers.0.blocks.1.attn.bias_gather", "layers.0.blocks.1.attn.bias_permute",
         "layers.0.blocks.1.attn.add_bias"),
        ("bias_",), ("layers.0.blocks.1.attn.bias_permute",),
    ),
    Chapter(
        "cyclic-shift-and-mask", "Cyclic shift and the attention mask", "Cyclic shift 与 attention mask",
        "Windows that never move would never let information cross their borders. Every second block "
        "therefore **rolls** the map by ⌊M/2⌋ tokens up and left (`torch.roll`), so the new windows straddle "
        "the old borders. The roll wraps the top and left strips around to the bottom and right, so some "
        "windows now hold tokens that are far apart in the image. The map is cut into 9 **regions**; tokens "
        "of different regions get −100 added to their score, which the softmax turns into practically zero. "
        "A stage whose map is a single window is not shifted.",
        "窗口如果永远不动，信息就无法跨过窗口边界。所以每隔一个 block 就把特征图向上、向左**循环移动** ⌊M/2⌋ 个 "
        "token（`torch.roll`），新的窗口横跨旧窗口的边界。循环移动把顶部和左侧的条带移到了底部和右侧，于是有些窗口"
        "包含了在图像中相距很远的 token。特征图被分成 9 个**区域**；不同区域的 token 之间的得分加上 −100，"
        "softmax 之后几乎为零。只有一个窗口的 stage 不做移动。",
        ("layers.0.create_mask.*", "layers.0.blocks.1.cyclic_shift", "layers.0.blocks.1.reverse_shift"),
        ("shift_stage1", "mask_stage1"), ("layers.0.create_mask.mask_windows", "layers.0.create_mask.mask_fill"),
    ),
    Chapter(
        "sw-msa", "SW-MSA: attention in shifted windows", "SW-MSA：移动后的窗口注意力",
        "An SW-MSA block runs the same attention as a W-MSA block, on the shifted map, and adds the mask "
        "right after the position bias: the scores are viewed as `B, nW, heads, N, N` so that the mask of "
        "each window (`nW, N, N`) lines up with it. After the softmax the windows are stitched back and the "
        "map is rolled back, so every token returns to its place.",
        "SW-MSA block 在移动后的特征图上做与 W-MSA 相同的注意力，并在加上位置偏置之后立刻加上 mask：得分被 view 成 "
        "`B, nW, heads, N, N`，使每个窗口的 mask（`nW, N, N`）正好对齐。softmax 之后窗口被拼回特征图，再反向循环"
        "移动，每个 token 回到原来的位置。",
        ("layers.0.blocks.1.attn.mask_matrix", "layers.0.blocks.1.attn.add_mask",
         "layers.0.blocks.1.attn.mask_view", "layers.0.blocks.1.attn.softmax", "layers.0.blocks.1.attention"),
        ("attention_",), ("layers.0.blocks.1.attn.add_mask", "layers.0.blocks.1.attn.mask_view"),
    ),
    Chapter(
        "patch-merging", "Patch merging", "Patch merging：下采样",
        "Between stages, **patch merging** halves the height and width: the four tokens of every 2×2 group "
        "(x0 top-left, x1 bottom-left, x2 top-right, x3 bottom-right) are concatenated into one token of 4C "
        "channels, normalised, and reduced to 2C by a linear layer without bias. Tokens shrink fourfold, "
        "channels double — the hierarchy that lets Swin serve detection and segmentation like a CNN.",
        "在两个 stage 之间，**patch merging** 把高和宽减半：每个 2×2 小组的四个 token（x0 左上、x1 左下、x2 右上、"
        "x3 右下）拼成一个 4C 通道的 token，做 LayerNorm，再用一个无偏置的线性层降到 2C。token 数变为四分之一，"
        "通道数加倍——这种层次结构让 Swin 能像 CNN 一样用于检测和分割。",
        ("layers.0.downsample.*",), ("patch_merging",),
        ("layers.0.downsample.gather", "layers.0.downsample.cat", "layers.0.downsample.reduction"),
    ),
    Chapter(
        "classification-head", "The classification head", "分类头",
        "After the last stage every token is normalised once more, the tokens are **averaged** into one "
        "vector per image, and a linear **head** turns it into one score (logit) per class. A softmax over "
        "the logits gives the probabilities of the top-5.",
        "最后一个 stage 之后，每个 token 再做一次 LayerNorm，所有 token **取平均**得到每张图像一个向量，线性**分类头**"
        "把它变成每个类别一个得分（logit）。对 logits 做 softmax 就得到 top-5 的概率。",
        ("forward_head.*", "topk"), ("top_predictions",),
        ("forward_head.avgpool", "forward_head.head_flatten", "forward_head.head"),
    ),
    Chapter(
        "shapes", "Shapes through the whole network", "贯穿整个网络的形状",
        "The table follows one image through the network: the tokens, channels and windows of every stage, "
        "as they were traced. Read it top to bottom and check the rules of the previous chapters: tokens "
        "divide by four and channels double at every merge; windows hold M² tokens; the last stage has a "
        "single window.",
        "下表跟踪一张图像穿过整个网络：每个 stage 的 token 数、通道数和窗口数，全部来自实际的 trace。从上到下读一遍，"
        "检验前面各章的规律：每次 merging 后 token 数除以四、通道数加倍；每个窗口有 M² 个 token；最后一个 stage "
        "只有一个窗口。",
        (r"layers\.\d+\.(input|output)",), ("stage_story",),
        ("layers.0.downsampled", "layers.1.downsampled", "layers.2.downsampled"),
    ),
)
