"""Notebook display and report writing, registered on the trace from above.

The trace data layer (events.py) knows no renderer; this module, in the
renderers' layer, gives it its notebook view (a trace, a subtree or a step
shows as the HTML report shows it) and ``Trace.report``, and a diff of two
traces its view and ``TraceDiff.report``. ``import swintrace`` loads it.
"""

from __future__ import annotations

from ..render.diff import render_diff_fragment
from ..render.html import render_explorer, render_fragment
from ..trace import diff, events
from .compare import write_diff
from .output import write_output


class ExplorerView:
    """A trace's window explorer as a notebook shows it (``Trace.explorer()``); ``html`` is the markup."""

    def __init__(self, trace: events.Trace, lang: str) -> None:
        self.html = render_explorer(trace, lang)

    def _repr_html_(self) -> str:
        return self.html


events.html_view = render_fragment
events.explorer_view = ExplorerView
events.report_writer = write_output
diff.html_view = render_diff_fragment
diff.report_writer = write_diff
