"""swintrace: an instrumented, educational tracer for the Swin Transformer.

    import swintrace
    model = swintrace.load_model("swin_t")
    with swintrace.tracing() as trace:
        logits = model(images)
    trace.save("trace.jsonl")
    same = swintrace.load_trace("trace.jsonl")

    trace = swintrace.trace_image(model, "cat.jpg")   # preprocessing included: transform_for(model)
    trace.report("report.html", lang="zh")            # the format from the extension
    table = trace.to_pandas()                         # one row per step (pandas optional)
    swintrace.diff("f32.jsonl", "bf16.jsonl")         # where two traces first part, and by how much
    swintrace.check(my_window_partition, "layers.0.blocks.0.window_partition")  # a learner's piece

The model and its loading (``load_model``, ``SwinTransformer``, ``trace_image``)
and ``tracing`` are imported on first use (PEP 562): reading and rendering traces
never loads the model's code, and ``import swintrace`` imports no torch (the
command line installs its signal handlers before torch's seconds of importing).
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .api import display  # noqa: F401 - registers the notebook view of traces
from .config import VARIANTS, SwinConfig
from .errors import UserError
from .trace.events import Event, TensorSummary, Trace
from .trace.tracefile import load_trace

# Public names imported on first use -> the module that defines them.
_LAZY = {"load_model": ".checkpoints.loading", "SwinTransformer": ".models.swin", "SwinTransformerV2": ".models.swin_v2",
         "build_model": ".models.swin_v2", "trace_image": ".api.trace_image",
         "make_pictures": ".pictures", "from_model": ".checkpoints.adopt", "shape_image": ".api.trace_image",
         "tracing": ".recording.tracing", "diff": ".trace.diff",
         "check": ".labs.check", "transform_for": ".api.trace_image", "train_step": ".api.backward"}

__all__ = [
    "VARIANTS",
    "Event",
    "SwinConfig",
    "SwinTransformer",
    "SwinTransformerV2",
    "TensorSummary",
    "Trace",
    "UserError",
    "__version__",
    "build_model",
    "check",
    "diff",
    "from_model",
    "load_model",
    "load_trace",
    "make_pictures",
    "shape_image",
    "trace_image",
    "tracing",
    "train_step",
    "transform_for",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'swintrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
