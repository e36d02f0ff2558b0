"""Figures made at the size they are printed: matplotlib without a display, no text under 8 pt at the
saved size, each figure written as PNG and PDF.

A figure is drawn at its print width (PAGE_WIDTH_IN, the text width of a two-column journal page) and
saved without rescaling, so a font size here is its size on paper.
"""
from pathlib import Path

from . import atomic

PAGE_WIDTH_IN = 7.0
MIN_FONT_PT = 8
FORMATS = ("png", "pdf")
PNG_DPI = 150
STYLE = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 8, "figure.titlesize": 10, "pdf.fonttype": 42}  # 42: TrueType, text stays text


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update(STYLE)
    return plt


def smallest_font(figure):
    """The smallest font size (pt) of the visible, non-empty texts of ``figure``."""
    from matplotlib.text import Text
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=MIN_FONT_PT)


def paths(stem):
    """The files ``save`` writes for ``stem`` (a path without suffix; dots in the name are kept)."""
    return [Path(f"{stem}.{fmt}") for fmt in FORMATS]


def save(figure, stem, dpi=PNG_DPI):
    """Write ``figure`` to <stem>.png and <stem>.pdf, each atomically, and close it. Refuses a figure
    with text under MIN_FONT_PT: it would not be legible in print."""
    plt = pyplot()
    smallest = smallest_font(figure)
    if smallest < MIN_FONT_PT:
        plt.close(figure)
        raise ValueError(f"{Path(stem).name}: text of {smallest} pt, the least legible in print is {MIN_FONT_PT} pt")
    for dest, fmt in zip(paths(stem), FORMATS):
        with atomic.atomic_path(dest) as tmp:
            figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight",
                           metadata={"CreationDate": None} if fmt == "pdf" else None)
    plt.close(figure)
