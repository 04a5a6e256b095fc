"""Checkpoint key layouts of the Swin ecosystem, converted to and from ours (the official one).

* ``official`` — microsoft/Swin-Transformer: ``layers.i.blocks.j.attn.qkv``, the
  downsample at the end of stage i (``layers.i.downsample``), ``head``.
* ``timm`` (>= 0.9) — the same names, but the downsample opens the next stage
  (``layers.{i+1}.downsample``) and the head is ``head.fc``; buffers absent.
* ``torchvision`` — ``features.0.0`` (conv) and ``features.0.2`` (norm) embed;
  stage i is ``features.{2i+1}.j``, its merge ``features.{2i+2}``; the MLP is
  ``mlp.0`` / ``mlp.3``.
* ``huggingface`` — ``SwinForImageClassification``: ``swin.embeddings…``,
  ``swin.encoder.layers.i.blocks.j`` with separate ``query``/``key``/``value``
  (transformers 4.x; 5.x names them ``q_proj``/``k_proj``/``v_proj``/``o_proj``
  and keeps the table in ``relative_position_bias``: both are read, 4.x is written),
  ``swin.layernorm``, ``classifier``.

Swin V2 (a ``logit_scale`` in every block) has the same layouts with V2's
parameters: the official, timm and our ``q_bias``/``v_bias`` are torchvision's
one ``qkv.bias`` whose key third is zero (the model zeroes it at every forward),
and Hugging Face's ``swinv2.`` model with ``query``/``value`` biases and a key
without one, ``continuous_position_bias_mlp`` for ``cpb_mlp``.

Buffers (``relative_position_index``, ``relative_coords_table``, ``attn_mask``)
are dropped: the model recomputes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from ..errors import UserError, printable

_BUFFERS = ("relative_position_index", "relative_coords_table", "attn_mask")

StateDict = dict[str, torch.Tensor]


def detect_layout(state_dict: StateDict) -> str:
    """Which library's key names ``state_dict`` uses."""
    keys = set(state_dict)
    if any(k.startswith("features.0.") for k in keys):
        return "torchvision"
    if any(k.startswith(("swin.", "swinv2.", "classifier.")) for k in keys):
        return "huggingface"
    if "head.fc.weight" in keys:
        return "timm"
    merges = {int(m.group(1)) for k in keys if (m := re.match(r"layers\.(\d+)\.downsample\.", k))}
    if merges and 0 not in merges:  # timm's first merge opens stage 1
        return "timm"
    return "official"


def to_official(state_dict: StateDict, layout: str) -> StateDict:
    """``state_dict`` in ``layout`` -> official names, buffers dropped.

    A checkpoint is untrusted: whatever its keys and shapes, the result is converted names (the
    loader then lists what does not fit) or a UserError, never another exception.
    """
    try:
        return _CONVERTERS[layout][0](_without_buffers(state_dict))
    except (ValueError, IndexError, KeyError, TypeError, RuntimeError) as error:
        if isinstance(error, UserError):
            raise
        why = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise UserError.of("checkpoint_malformed", layout=layout, why=printable(why)) from None


def official_buffers(state_dict: StateDict, layout: str) -> StateDict:
    """The relative position indexes and coordinates tables ``state_dict`` keeps, by official names:
    the only record of a Swin V2's windows (no parameter's shape tells them)."""
    kept = ("relative_position_index", "relative_coords_table")
    try:
        return dict(_CONVERTERS[layout][0]({key: value for key, value in state_dict.items() if key.endswith(kept)}))
    except (ValueError, IndexError, KeyError, TypeError, RuntimeError):
        return {}


def from_official(state_dict: StateDict, layout: str) -> StateDict:
    """Official names -> ``layout`` (for saving, and for round-trip tests)."""
    return _CONVERTERS[layout][1](_without_buffers(state_dict))


def is_swin_v2(state_dict: StateDict) -> bool:
    """Whether the keys (any layout) are a Swin V2's: its blocks learn a logit scale."""
    return any(key.endswith("logit_scale") for key in state_dict)


def _without_buffers(state_dict: StateDict) -> StateDict:
    return {k: v for k, v in state_dict.items() if not k.endswith(_BUFFERS)}


class _Converted(dict):
    """A state dict being converted to official names: two keys for one parameter
    (``head.weight`` beside timm's ``head.fc.weight``, transformers 4.x and 5.x names
    together) are refused, never one silently taken over the other."""

    def __init__(self) -> None:
        super().__init__()
        self._sources: dict[str, str] = {}

    def put(self, key: str, value: torch.Tensor, source: str) -> None:
        if key in self:
            raise UserError.of("checkpoint_same_parameter", name=printable(key[:120]),
                               first=printable(self._sources[key][:120]), second=printable(source[:120]))
        self[key] = value
        self._sources[key] = source


# -- timm -------------------------------------------------------------------
def _timm_to_official(state_dict: StateDict) -> StateDict:
    out = _Converted()
    for source, value in state_dict.items():
        key = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) - 1}.downsample.", source)
        out.put(re.sub(r"^head\.fc\.", "head.", key), value, source)
    return out


def _official_to_timm(state_dict: StateDict) -> StateDict:
    out = {}
    for key, value in state_dict.items():
        key = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) + 1}.downsample.", key)
        out[re.sub(r"^head\.", "head.fc.", key)] = value
    return out


# -- torchvision ------------------------------------------------------------
_TV_MLP = {"mlp.0.": "mlp.fc1.", "mlp.3.": "mlp.fc2."}


def _torchvision_to_official(state_dict: StateDict) -> StateDict:
    out = _Converted()
    for key, value in state_dict.items():
        if key.startswith("features.0.0."):
            out.put("patch_embed.proj." + key.removeprefix("features.0.0."), value, key)
        elif key.startswith("features.0.2."):
            out.put("patch_embed.norm." + key.removeprefix("features.0.2."), value, key)
        elif match := re.match(r"features\.(\d+)\.(.*)", key):
            index, rest = int(match.group(1)), match.group(2)
            if index % 2 == 1 and "." in rest:  # a stage: features.{2i+1}.{block}.…
                block, name = rest.split(".", 1)
                for theirs, ours in _TV_MLP.items():
                    name = ours + name.removeprefix(theirs) if name.startswith(theirs) else name
                out.put(f"layers.{(index - 1) // 2}.blocks.{block}.{name}", value, key)
            elif index % 2 == 0:  # a patch merging: features.{2i+2}.…
                out.put(f"layers.{(index - 2) // 2}.downsample.{rest}", value, key)
            else:  # features.1.weight: no block of a stage; reported as unexpected by the loader
                out.put(key, value, key)
        else:
            out.put(key, value, key)
    return _split_v2_qkv_bias(out) if is_swin_v2(out) else out


def _split_v2_qkv_bias(state_dict: _Converted) -> _Converted:
    """torchvision's V2 ``qkv.bias`` (3C, its key third unused) -> the official ``q_bias`` and ``v_bias``."""
    out = _Converted()
    for key, value in state_dict.items():
        if key.endswith("attn.qkv.bias") and value.ndim == 1 and value.shape[0] % 3 == 0:
            q_bias, _, v_bias = value.chunk(3)  # each C
            out.put(key.removesuffix("qkv.bias") + "q_bias", q_bias, key)
            out.put(key.removesuffix("qkv.bias") + "v_bias", v_bias, key)
        else:
            out.put(key, value, key)
    return out


def _official_to_torchvision(state_dict: StateDict) -> StateDict:
    out = {}
    for key, value in state_dict.items():
        if key.startswith("patch_embed.proj."):
            out["features.0.0." + key.removeprefix("patch_embed.proj.")] = value
        elif key.startswith("patch_embed.norm."):
            out["features.0.2." + key.removeprefix("patch_embed.norm.")] = value
        elif match := re.match(r"layers\.(\d+)\.blocks\.(\d+)\.(.*)", key):
            name = match.group(3)
            for theirs, ours in _TV_MLP.items():
                name = theirs + name.removeprefix(ours) if name.startswith(ours) else name
            out[f"features.{2 * int(match.group(1)) + 1}.{match.group(2)}.{name}"] = value
        elif match := re.match(r"layers\.(\d+)\.downsample\.(.*)", key):
            out[f"features.{2 * int(match.group(1)) + 2}.{match.group(2)}"] = value
        else:
            out[key] = value
    if is_swin_v2(state_dict):  # one qkv.bias: (q_bias, zeros, v_bias)
        for key in [key for key in out if key.endswith("attn.q_bias")]:
            v_key = key.removesuffix("q_bias") + "v_bias"
            out[key.removesuffix("q_bias") + "qkv.bias"] = torch.cat(
                (out.pop(key), torch.zeros_like(out[v_key]), out.pop(v_key)))  # 3C
    return out


# -- Hugging Face -----------------------------------------------------------
# transformers 5.x names of a block's parameters (read only; the rest is as in 4.x)
_HF5_BLOCK = {
    "attention.relative_position_bias.relative_position_bias_table": "attn.relative_position_bias_table",
    "attention.o_proj.": "attn.proj.",
}
# transformers 4.x (read and written)
_HF_BLOCK = {
    "layernorm_before.": "norm1.",
    "attention.self.relative_position_bias_table": "attn.relative_position_bias_table",
    "attention.output.dense.": "attn.proj.",
    "layernorm_after.": "norm2.",
    "intermediate.dense.": "mlp.fc1.",
    "output.dense.": "mlp.fc2.",
    "attention.self.logit_scale": "attn.logit_scale",  # Swin V2
    "attention.self.continuous_position_bias_mlp.": "attn.cpb_mlp.",
}
_HF_TOP = {
    "swin.embeddings.patch_embeddings.projection.": "patch_embed.proj.",
    "swin.embeddings.norm.": "patch_embed.norm.",
    "swin.layernorm.": "norm.",
    "classifier.": "head.",
}
_QKV = ("query", "key", "value")


def _huggingface_to_official(state_dict: StateDict) -> StateDict:
    out = _Converted()
    split: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    for source, value in state_dict.items():
        key = "swin." + source.removeprefix("swinv2.") if source.startswith("swinv2.") else source  # V2's model
        top = next((ours + key[len(theirs):] for theirs, ours in _HF_TOP.items() if key.startswith(theirs)), None)
        if top is not None:
            out.put(top, value, source)
            continue
        match = re.match(r"swin\.encoder\.layers\.(\d+)\.(blocks\.\d+|downsample)\.(.*)", key)
        if match is None:
            out.put(source, value, source)  # reported as unexpected by the loader
            continue
        prefix, rest = f"layers.{match.group(1)}.{match.group(2)}.", match.group(3)
        qkv = re.match(r"attention\.(?:self\.(query|key|value)|(q|k|v)_proj)\.(weight|bias)$", rest)
        if qkv:
            name = qkv.group(1) or _QKV["qkv".index(qkv.group(2))]
            parts = split.setdefault(f"{prefix}attn.qkv.{qkv.group(3)}", {})
            if name in parts:  # attention.self.query and attention.q_proj both
                raise UserError.of("checkpoint_same_parameter", name=f"{prefix}attn.qkv ({name})",
                                   first=printable(parts[name][0][:120]), second=printable(source[:120]))
            parts[name] = (source, value)
            continue
        for theirs, ours in (_HF5_BLOCK | _HF_BLOCK).items():
            if rest.startswith(theirs):
                rest = ours + rest[len(theirs):]
                break
        out.put(prefix + rest, value, source)
    for key, parts in split.items():
        if key.endswith(".bias") and set(parts) == {"query", "value"} and is_swin_v2(state_dict):  # V2: keys have none
            out.put(key.removesuffix("qkv.bias") + "q_bias", parts["query"][1], parts["query"][0])
            out.put(key.removesuffix("qkv.bias") + "v_bias", parts["value"][1], parts["value"][0])
        elif set(parts) == set(_QKV):
            shapes = [tuple(parts[name][1].shape) for name in _QKV]
            if len(set(shapes)) != 1 or len(shapes[0]) not in (1, 2) or 0 in shapes[0]:
                raise UserError.of("checkpoint_malformed", layout="huggingface", why=printable(
                    f"{parts['query'][0][:120]}: query, key and value of shapes {', '.join(map(str, shapes))}"))
            out.put(key, torch.cat([parts[name][1] for name in _QKV], dim=0), parts["query"][0])  # q, k, v: 3C
        else:
            for name, (source, value) in parts.items():
                out.put(key.replace("attn.qkv.", f"attention.self.{name}."), value, source)  # incomplete: unexpected
    return out


def _official_to_huggingface(state_dict: StateDict) -> StateDict:
    out: StateDict = {}
    model = "swinv2." if is_swin_v2(state_dict) else "swin."
    for key, value in state_dict.items():
        top = next((theirs + key[len(ours):] for theirs, ours in _HF_TOP.items() if key.startswith(ours)), None)
        if top is not None:
            out[top.replace("swin.", model, 1) if top.startswith("swin.") else top] = value
            continue
        match = re.match(r"layers\.(\d+)\.(blocks\.\d+|downsample)\.(.*)", key)
        prefix, rest = f"{model}encoder.layers.{match.group(1)}.{match.group(2)}.", match.group(3)
        if rest in ("attn.q_bias", "attn.v_bias"):  # V2: the key has no bias
            out[f"{prefix}attention.self.{'query' if rest == 'attn.q_bias' else 'value'}.bias"] = value
            continue
        if rest.startswith("attn.qkv."):
            for name, part in zip(_QKV, value.chunk(3, dim=0)):
                out[f"{prefix}attention.self.{name}.{rest.removeprefix('attn.qkv.')}"] = part.clone()
            continue
        for theirs, ours in _HF_BLOCK.items():
            if rest.startswith(ours):
                rest = theirs + rest[len(ours):]
                break
        out[prefix + rest] = value
    return out


# layout -> (to official names, from official names)
_CONVERTERS: dict[str, tuple[Callable[[StateDict], StateDict], Callable[[StateDict], StateDict]]] = {
    "official": (dict, dict),
    "timm": (_timm_to_official, _official_to_timm),
    "torchvision": (_torchvision_to_official, _official_to_torchvision),
    "huggingface": (_huggingface_to_official, _official_to_huggingface),
}
LAYOUTS = tuple(_CONVERTERS)
