"""Make the small CJK font that Chinese pictures are drawn with.

Pictures are PNGs, so their Chinese text needs glyphs we ship: this script cuts
WenQuanYi Micro Hei (Apache-2.0; Debian: ``apt-get install fonts-wqy-microhei``)
down to printable ASCII, a few symbols, and every character of the pictures'
words in the Chinese catalog. Run it again after adding characters there
(tests/test_words.py says when)::

    pip install fonttools
    python tools/subset_cjk_font.py [/usr/share/fonts/truetype/wqy/wqy-microhei.ttc]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fontTools import subset

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "swintrace" / "data" / "words" / "zh.json"
OUT = ROOT / "swintrace" / "data" / "fonts" / "wqy-microhei-subset.ttf"
SYMBOLS = "×·−→←²√⌊⌋…–—“”‘’（）：，。、；！？《》"


def characters() -> str:
    """Printable ASCII, SYMBOLS and every character of the pictures' Chinese words."""
    chars = {chr(code) for code in range(0x20, 0x7F)} | set(SYMBOLS)
    chars |= set("".join(json.loads(CATALOG.read_text("utf-8"))["pictures"].values()))
    return "".join(sorted(c for c in chars if c.isprintable()))


def main(source: str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc") -> None:
    options = subset.Options()
    options.font_number = 0
    options.name_IDs = ["*"]  # keep the copyright and license records
    options.hinting = False
    options.desubroutinize = True
    font = subset.load_font(source, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters())
    subsetter.subset(font)
    subset.save_font(font, str(OUT), options)
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes, {len(characters())} characters")


if __name__ == "__main__":
    main(*sys.argv[1:])
