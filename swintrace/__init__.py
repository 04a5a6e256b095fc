"""swintrace: an instrumented, educational tracer for the Swin Transformer.

    import swintrace
    model = swintrace.load_model("swin_t")
    with swintrace.tracing() as trace:
        logits = model(images)
    trace.save("trace.jsonl")
    same = swintrace.load_trace("trace.jsonl")
"""

__version__ = "0.1.0"

from .config import VARIANTS, SwinConfig  # noqa: E402
from .errors import UserError  # noqa: E402
from .events import Event, TensorSummary, Trace, load_trace  # noqa: E402
from .loading import load_model  # noqa: E402
from .model import SwinTransformer  # noqa: E402
from .tracing import tracing  # noqa: E402

__all__ = [
    "VARIANTS",
    "Event",
    "SwinConfig",
    "TensorSummary",
    "Trace",
    "UserError",
    "SwinTransformer",
    "__version__",
    "load_model",
    "load_trace",
    "tracing",
]
