"""Pictures made from a trace: pure functions of its events (and the small arrays they carry).

``make_pictures(trace)`` returns every picture the trace has data for:
window grids per stage, the cyclic shift and the mask mosaic per shifted
stage, relative position bias and one query's attention for the chosen block (for a
Swin V2 also its log-spaced offsets, continuous position bias, cosine scores and norms),
patch merging, the stage story and the top-5, and for a model trained on
the teaching data set, its classes. A trace recorded without
``pictures=True`` still gets the pictures that need no extra arrays.
"""

from __future__ import annotations

import re

from ..trace.events import Trace
from .attention import query_attention, relative_position
from .draw import Picture
from .generations import generation_pictures
from .gradients import backward_pictures
from .grids import cyclic_shift, mask_mosaic, window_grid
from .spread import spread
from .story import patch_merging, stage_story, teaching_classes, top_bars

__all__ = ["Picture", "make_pictures"]

_STAGE_INPUT = re.compile(r"layers\.(\d+)\.input")


def make_pictures(trace: Trace, lang: str = "en") -> list[Picture]:
    """All pictures for ``trace``, in report order, their words in ``lang``."""
    options = trace.header.get("options", {}).get("pictures") or {}
    block = options.get("block", "layers.0.blocks.1")
    head = options.get("head", 0)
    stages = sorted({int(match.group(1)) for step_id in trace.shown() if (match := _STAGE_INPUT.fullmatch(step_id))})
    candidates = [stage_story(trace, lang), top_bars(trace, lang), teaching_classes(trace, lang)]
    for stage in stages:
        candidates += [
            window_grid(trace, stage, lang),
            cyclic_shift(trace, stage, lang),
            mask_mosaic(trace, stage, lang),
        ]
    candidates += [
        relative_position(trace, block, head, lang),
        *generation_pictures(trace, block, head, lang),  # a Swin V2's: none for V1
        query_attention(trace, block, head, lang),
        patch_merging(trace, lang),
        spread(trace, lang),
    ]
    candidates += backward_pictures(trace, block, lang)  # a backward trace's: after the forward's
    return [picture for picture in candidates if picture is not None]
