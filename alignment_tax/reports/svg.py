"""A small SVG drawing kit: a plot frame with linear axes, nice ticks, a legend and escaped text.

Every plot is a standalone ``<svg xmlns=...>`` string, so the same text is inlined in the HTML
report and written as a ``.svg`` file beside the Markdown one. Text passes through
:func:`text` (visible control characters, XML-escaped); numbers are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from alignment_tax.reports.textsafe import visible

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22")
BASE_COLOR = "#7f7f7f"
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', 'Noto Sans', sans-serif\""


def text(value: object) -> str:
    """Escaped for XML text and attribute values."""
    return escape(visible(str(value)), quote=True)


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(index * step, 12) for index in range(first, last + 1)]


def number(value: float, span: float | None = None) -> str:
    """A tick label: as many decimals as the tick spacing needs."""
    if value == 0:
        return "0"
    digits = 0
    if span is not None and span > 0:
        # The fewest decimals that write the tick spacing exactly (2.5 -> 1, 5 -> 0, 0.25 -> 2).
        digits = next((d for d in range(7) if abs(round(span, d) - span) < span * 1e-6), 6)
    return f"{value:.{digits}f}"


def padded(values: Sequence[float], include_zero: bool = False, pad: float = 0.06) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if include_zero:
        finite.append(0.0)
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high == low:
        spread = abs(low) * 0.1 or 1.0
        return low - spread, high + spread
    margin = (high - low) * pad
    return low - margin, high + margin


class Frame:
    """A plot area with x and y linear axes; drawing calls append SVG elements."""

    def __init__(
        self,
        title: str,
        x_label: str,
        y_label: str,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        width: int = 560,
        height: int = 340,
        right: int = 150,
    ):
        self.title, self.x_label, self.y_label = title, x_label, y_label
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = 64, right, 34, 48
        self.x_ticks = nice_ticks(*x_range)
        self.y_ticks = nice_ticks(*y_range)
        self.x0, self.x1 = min(self.x_ticks[0], x_range[0]), max(self.x_ticks[-1], x_range[1])
        self.y0, self.y1 = min(self.y_ticks[0], y_range[0]), max(self.y_ticks[-1], y_range[1])
        self.parts: list[str] = []
        self.legend: list[tuple[str, str, str]] = []  # (label, color, kind)

    def sx(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (x - self.x0) / span * (self.width - self.left - self.right)

    def sy(self, y: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (y - self.y0) / span * (self.height - self.top - self.bottom)

    def clamp_x(self, x: float) -> float:
        return min(max(x, self.x0), self.x1)

    def clamp_y(self, y: float) -> float:
        return min(max(y, self.y0), self.y1)

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1, dash: str = "") -> None:
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{self.sx(x1):.1f}" y1="{self.sy(y1):.1f}" x2="{self.sx(x2):.1f}" y2="{self.sy(y2):.1f}" '
            f'stroke="{stroke}" stroke-width="{width}"{dashed}/>'
        )

    def path(self, points: Sequence[tuple[float, float]], stroke: str, width: float = 2, dash: str = "") -> None:
        if not points:
            return
        coordinates = " ".join(f"{self.sx(x):.1f},{self.sy(y):.1f}" for x, y in points)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline points="{coordinates}" fill="none" stroke="{stroke}" stroke-width="{width}"{dashed}/>'
        )

    def point(self, x: float, y: float, fill: str, hollow: bool = False, tip: str = "") -> None:
        """A marker; its label, if any, is placed by :mod:`alignment_tax.reports.labels` so labels never overlap."""
        style = (
            f'fill="white" stroke="{fill}" stroke-width="2"'
            if hollow
            else f'fill="{fill}" stroke="white" stroke-width="1"'
        )
        title = f"<title>{text(tip)}</title>" if tip else ""
        self.parts.append(f'<circle cx="{self.sx(x):.1f}" cy="{self.sy(y):.1f}" r="5" {style}>{title}</circle>')

    def add_legend(self, label: str, stroke: str, kind: str = "line") -> None:
        self.legend.append((label, stroke, kind))

    def _axes(self) -> list[str]:
        parts = []
        plot_left, plot_right = self.left, self.width - self.right
        plot_top, plot_bottom = self.top, self.height - self.bottom
        x_span = self.x_ticks[1] - self.x_ticks[0] if len(self.x_ticks) > 1 else None
        y_span = self.y_ticks[1] - self.y_ticks[0] if len(self.y_ticks) > 1 else None
        for tick in self.y_ticks:
            y = self.sy(tick)
            parts.append(f'<line x1="{plot_left}" y1="{y:.1f}" x2="{plot_right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
            parts.append(
                f'<text x="{plot_left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#444">{number(tick, y_span)}</text>'
            )
        for tick in self.x_ticks:
            x = self.sx(tick)
            parts.append(f'<line x1="{x:.1f}" y1="{plot_top}" x2="{x:.1f}" y2="{plot_bottom}" stroke="#f0f0f0"/>')
            parts.append(
                f'<text x="{x:.1f}" y="{plot_bottom + 16}" font-size="11" text-anchor="middle" fill="#444">{number(tick, x_span)}</text>'
            )
        parts.append(
            f'<rect x="{plot_left}" y="{plot_top}" width="{plot_right - plot_left}" height="{plot_bottom - plot_top}" fill="none" stroke="#999"/>'
        )
        middle_x = (plot_left + plot_right) / 2
        parts.append(
            f'<text x="{middle_x:.1f}" y="{self.height - 10}" font-size="12" text-anchor="middle" fill="#222">{text(self.x_label)}</text>'
        )
        middle_y = (plot_top + plot_bottom) / 2
        parts.append(
            f'<text x="14" y="{middle_y:.1f}" font-size="12" text-anchor="middle" fill="#222" '
            f'transform="rotate(-90 14 {middle_y:.1f})">{text(self.y_label)}</text>'
        )
        parts.append(
            f'<text x="{plot_left}" y="20" font-size="13" font-weight="600" fill="#111">{text(self.title)}</text>'
        )
        return parts

    def _legend(self) -> list[str]:
        parts = []
        x = self.width - self.right + 12
        for index, (label, stroke, kind) in enumerate(self.legend):
            y = self.top + 8 + index * 18
            if kind == "point":
                parts.append(f'<circle cx="{x + 8}" cy="{y}" r="5" fill="{stroke}"/>')
            elif kind == "hollow":
                parts.append(f'<circle cx="{x + 8}" cy="{y}" r="5" fill="white" stroke="{stroke}" stroke-width="2"/>')
            else:
                dash = ' stroke-dasharray="5 3"' if kind == "dashed" else ""
                parts.append(
                    f'<line x1="{x}" y1="{y}" x2="{x + 16}" y2="{y}" stroke="{stroke}" stroke-width="2"{dash}/>'
                )
            parts.append(f'<text x="{x + 22}" y="{y + 4}" font-size="11" fill="#222">{text(shorten(label, 20))}</text>')
        return parts

    def svg(self, description: str = "") -> str:
        body = "".join(self._axes() + self.parts + self._legend())
        return document(self.width, self.height, self.title, body, description)


def shorten(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def document(width: int, height: int, title: str, body: str, description: str = "") -> str:
    desc = f"<desc>{text(description)}</desc>" if description else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" {FONT}><title>{text(title)}</title>{desc}<rect width="{width}" height="{height}" fill="white"/>'
        f"{body}</svg>"
    )
