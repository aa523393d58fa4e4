"""Matplotlib figures as SVG text for the reports (the examinee's trend charts, the group report's charts): rendered
server-side, glyphs drawn as paths so the SVG needs no font wherever it is shown, and stable element ids so the same
data gives the same SVG. matplotlib is imported on first use: it takes a while, and most outputs draw nothing."""

from __future__ import annotations

import io
import warnings
from functools import cache
from pathlib import Path
from typing import Any

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Micro Hei", "DejaVu Sans"]

# Where Debian's fonts-noto-cjk puts the font; registered directly when matplotlib's font cache predates it.
NOTO_CJK_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
)


@cache
def _set_up_matplotlib() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager

    known = {font.name for font in font_manager.fontManager.ttflist}
    if not known.intersection(CJK_FONTS[:-1]):
        for path in NOTO_CJK_FILES:
            if Path(path).is_file():
                font_manager.fontManager.addfont(path)
    # A missing glyph is reported once per character by matplotlib; the text is still drawn, with boxes.
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)


def new_figure(width: float, height: float, *, hash_salt: str) -> Any:
    """(figure, axes) of `width` × `height` inches; `hash_salt` keeps each kind of chart's SVG ids stable."""
    _set_up_matplotlib()
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = CJK_FONTS
    plt.rcParams["axes.unicode_minus"] = False
    plt.rcParams["svg.fonttype"] = "path"
    plt.rcParams["svg.hashsalt"] = hash_salt
    return plt.subplots(figsize=(width, height), dpi=100)


def figure_svg(figure: Any, *, pad: float | None = None) -> str:
    """The figure as an `<svg>` element (closed afterwards); `pad` is tight_layout's, matplotlib's default if None."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    if pad is None:
        figure.tight_layout()
    else:
        figure.tight_layout(pad=pad)
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    # The XML declaration and DOCTYPE are not allowed inside HTML; the <svg> element is.
    return text[text.index("<svg") :]
