"""Notebook display and report writing, registered on the trace from above.

The trace data layer (events.py) knows no renderer; this module, in the
renderers' layer, gives it its notebook view (a trace, a subtree or a step
shows as the HTML report shows it) and ``Trace.report``. ``import swintrace``
loads it.
"""

from __future__ import annotations

from . import events
from .output import write_output
from .render.html import render_fragment

events.html_view = render_fragment
events.report_writer = write_output
