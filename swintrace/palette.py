"""Every color swintrace uses, in one place: step titles (Markdown, HTML, terminal), the pages' CSS
and the pictures all read it.

Step kinds are colored by family, so that the eye learns them (vocabulary.py
says which family a kind is in).
"""

from __future__ import annotations

# Step families
PINK = "#fe618e"  # inputs, scope headings
ORANGE = "#fd7949"  # outputs
BLUE = "#3296ee"  # reshapes, shifted windows
CYAN = "#00c2ea"
GREEN = "#19ce8b"  # attention arithmetic, probabilities
LIME = "#7fd02b"
RED = "#fe1111"  # masks and shifts, window grid lines
PURPLE = "#6f67e0"  # position bias
AMBER = "#ff9702"  # residual paths, warnings, exercises
# Paper and ink
INK = "#1d2330"
MUTED = "#5f6678"  # 5.4:1 on SOFT, 5.9:1 on PAPER (WCAG AA)
LINE = "#e3e6ee"
PAPER = "#ffffff"
SOFT = "#f6f7fb"
WARNING_PAPER = "#fff4e0"
GREY = "#969696"
CANVAS = "#c8cad0"  # behind a picture with no input image
# Attention masks: 0 (may attend) and -100 (masked)
OPEN = "#eceef4"
MASKED = "#b2182b"
# The nine regions of the shifted-window mask, in region-id order.
REGIONS = (PINK, CYAN, BLUE, ORANGE, AMBER, PURPLE, GREEN, LIME, GREY)
# A viridis-like ramp from low to high.
SEQUENTIAL = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")

# CSS custom properties of the pages (walkthrough.css, page.css and the course use var(--name)).
_CSS_NAMES = {
    "ink": INK, "muted": MUTED, "line": LINE, "paper": PAPER, "soft": SOFT, "pink": PINK, "green": GREEN,
    "blue": BLUE, "amber": AMBER, "warning-paper": WARNING_PAPER,
}


def rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` as an (r, g, b) tuple, for Pillow."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def css_variables() -> str:
    """The palette as CSS custom properties on ``.swintrace``."""
    return ".swintrace { " + " ".join(f"--{name}: {value};" for name, value in _CSS_NAMES.items()) + " }"
