"""Notebook display: a trace, a subtree or a step shows as the HTML report shows it.

The trace data layer (events.py) knows no renderer; this module, in the
renderers' layer, registers the view on it. ``import swintrace`` loads it.
"""

from __future__ import annotations

from . import events
from .render.html import render_fragment

events.html_view = render_fragment
