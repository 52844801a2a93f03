"""Matplotlib figures as standalone, deterministic SVG text, inlined in the HTML report and written
beside the Markdown one.

Matplotlib is imported only when a figure is drawn, so ``alignment-tax --help`` stays fast, and
only through :class:`matplotlib.figure.Figure` (no pyplot state). Text stays text
(``svg.fonttype: none``), mathtext and TeX are off (a run named ``a$b$c`` prints as written),
and every string from a run passes :func:`text` first. Each figure's ids are salted with its own
``key`` so that two SVGs inlined in one page never share an element id.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
import warnings
from contextlib import contextmanager
from html import escape

from alignment_tax.reports.textsafe import visible

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22")
BASE_COLOR = "#7f7f7f"
# Measured in the first installed one that has the glyph (run names are Chinese or Tibetan too);
# the SVG names them all, then sans-serif, so a browser without them still picks a real font.
FONTS = ("DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "Tibetan Machine Uni", "Noto Serif Tibetan")
FONT_CSS = ", ".join(f"'{name}'" for name in FONTS) + ", sans-serif"
PX = 72  # dots per inch: one SVG point is one CSS pixel, so sizes below are pixels


def text(value: object) -> str:
    """A run's text as matplotlib should draw it: control and format characters made visible."""
    return visible(str(value))


def shorten(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@functools.cache
def _families() -> tuple[str, ...]:
    """The fonts of :data:`FONTS` installed here (DejaVu Sans ships with matplotlib), looked up once."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return tuple(name for name in FONTS if name in installed)


@contextmanager
def drawing(key: str):
    """Matplotlib settings for one figure: fonts, literal text, ids salted with ``key``."""
    # Font fallbacks (no bold Tibetan face; a glyph no installed font has, where fonts-noto-cjk is
    # absent) are expected: the SVG keeps the text, and the browser draws it. Quiet for this figure
    # only, and from before the first import: building the font cache (over 5 s) says so on stderr.
    log = logging.getLogger("matplotlib.font_manager")
    level = log.level
    log.setLevel(logging.ERROR)
    import matplotlib

    settings = {
        "font.family": list(_families()),
        "font.size": 11,
        "text.parse_math": False,
        "text.usetex": False,
        "svg.fonttype": "none",
        "svg.hashsalt": key,
        "axes.edgecolor": "#999999",
        "axes.labelcolor": "#222222",
        "xtick.color": "#444444",
        "ytick.color": "#444444",
        "axes.formatter.useoffset": False,
    }
    try:
        with matplotlib.rc_context(settings), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
            yield
    finally:
        log.setLevel(level)


def figure(width: int, height: int):
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / PX, height / PX), dpi=PX, layout="constrained")
    fig.get_layout_engine().set(w_pad=6 / PX, h_pad=6 / PX)
    FigureCanvasSVG(fig)  # text measured unhinted, as the SVG is written (Agg's hinting is wider)
    return fig


def renderer(fig):
    """The SVG renderer's text measure: the layout's and the label placer's."""
    from matplotlib.backends.backend_svg import RendererSVG

    return RendererSVG(fig.bbox.width, fig.bbox.height, io.StringIO())


def key_of(*parts: object) -> str:
    """A figure's own id prefix, from what it shows: figures of one report differ in title or data."""
    return "f" + hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:8]


def finish(fig, title: str, description: str, tips: dict[str, str] | None = None) -> str:
    """``fig`` as an SVG element for inlining: no XML prolog, a title, description and role, pixel
    size, and a ``<title>`` tooltip in each group whose gid is a key of ``tips``."""
    import matplotlib

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=dict.fromkeys(("Date", "Creator", "Format", "Type")))
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    head, body = svg.split(">", 1)
    size = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', head)
    width, height = (round(float(size[i])) for i in (1, 2))
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" version="1.1">'
        f"<title>{escape(text(title))}</title><desc>{escape(text(description))}</desc>"
    )
    for gid, tip in (tips or {}).items():
        body = body.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(text(tip))}</title>', 1)
    # Matplotlib's own group ids (figure_1, axes_1, …) are the same in every figure: salt them too.
    salt = matplotlib.rcParams["svg.hashsalt"]
    body = re.sub(r'<g id="([^"]*)"', lambda m: m[0] if salt in m[1] else f'<g id="{salt}-{m[1]}"', body)
    body = body.replace(' xlink:href="#', ' href="#')  # SVG 2: no xlink namespace (and its URL) needed
    # The browser picks from every font named, installed here or not.
    body = re.sub(r"font-family: [^;]*;", f"font-family: {FONT_CSS};", body)
    return head + body.rstrip()
