"""Point labels that never overlap, for the tax-against-gain plots.

Runs often land on the same spot (every run that changed nothing sits at the origin with the
base), and labels drawn at a fixed offset from each point then print over one another. Here
points at the same spot share one label (``a, b, c``), and each label goes to the first of a
ring of places around its point, at growing distances, that overlaps no label placed before it,
no point marker and nothing outside the plot area; a label set away from its point gets a thin
leader line to it. A label with no free place is left out: the legend still names every point.

Sizes are in SVG pixels at the 11 px label font. Text width is estimated generously (7 px a
character, 11.5 px a wide East Asian one), and the height for the tallest script drawn, so that a
real font's label fits inside the box that was checked; the text is set against the side of the
box that faces its point (tests/test_report_browser.py measures the drawn labels in Chromium).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

NARROW, WIDE = 7.0, 11.5
# Above and below the baseline: Chromium's box for 11 px text reaches 10 px up in the Latin
# font, 11 with a CJK fallback and 12 with a Tibetan one, and 3 px down in each.
ASCENT, DESCENT = 12.0, 3.0
MARKER = 5.0  # a point's radius
SAME_SPOT = 2.0  # points closer than this (pixels) are drawn on top of each other: one label
DISTANCES = (7.0, 16.0, 28.0, 42.0, 60.0, 82.0)
DIRECTIONS = ((1, -1), (1, 1), (-1, -1), (-1, 1), (1, 0), (-1, 0), (0, -1), (0, 1))  # NE first, as before
LEADER_FROM = 12.0  # a label further than this from its point gets a leader line
GROUP_LIMIT = 60  # characters of a shared label before it is cut (the legend has every name)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def inside(self, other: Box) -> bool:
        return other.x0 <= self.x0 and self.x1 <= other.x1 and other.y0 <= self.y0 and self.y1 <= other.y1

    def nearest(self, x: float, y: float) -> tuple[float, float]:
        return min(max(x, self.x0), self.x1), min(max(y, self.y0), self.y1)


@dataclass
class Label:
    text: str
    x: float  # the point it names
    y: float
    color: str
    box: Box | None = None  # None: no free place; not drawn

    @property
    def baseline(self) -> tuple[float, float]:
        assert self.box is not None
        return self.box.x0, self.box.y1 - DESCENT

    @property
    def leader(self) -> tuple[float, float, float, float] | None:
        if self.box is None:
            return None
        tx, ty = self.box.nearest(self.x, self.y)
        return (self.x, self.y, tx, ty) if math.hypot(tx - self.x, ty - self.y) > LEADER_FROM else None


def text_width(text: str) -> float:
    return sum(WIDE if unicodedata.east_asian_width(char) in "WF" else NARROW for char in text)


def group(points: list[tuple[str, float, float, str]]) -> list[Label]:
    """``points`` (name, x, y, color) in pixels; those on the same spot become one label."""
    labels: list[tuple[list[str], float, float, list[str]]] = []
    for name, x, y, color in points:
        for names, lx, ly, colors in labels:
            if math.hypot(x - lx, y - ly) < SAME_SPOT:
                names.append(name)
                colors.append(color)
                break
        else:
            labels.append(([name], x, y, [color]))
    result = []
    for names, x, y, colors in labels:
        text = ", ".join(names)
        if len(text) > GROUP_LIMIT:
            text = text[: GROUP_LIMIT - 1] + "…"
        result.append(Label(text, x, y, colors[0] if len(set(colors)) == 1 else "#333"))
    return result


def _candidate(label: Label, width: float, distance: float, direction: tuple[int, int]) -> Box:
    dx, dy = direction
    ax, ay = label.x + dx * distance, label.y + dy * distance
    height = ASCENT + DESCENT
    x0 = ax if dx > 0 else ax - width if dx < 0 else ax - width / 2
    y0 = ay if dy > 0 else ay - height if dy < 0 else ay - height / 2
    return Box(x0, y0, x0 + width, y0 + height)


def place(labels: list[Label], area: Box) -> list[Label]:
    """Give each label the first free place around its point (see the module docstring), in order."""
    markers = [Box(label.x - MARKER, label.y - MARKER, label.x + MARKER, label.y + MARKER) for label in labels]
    taken: list[Box] = []
    for label in labels:
        width = text_width(label.text)
        for distance in DISTANCES:
            box = next(
                (
                    box
                    for direction in DIRECTIONS
                    if (box := _candidate(label, width, distance, direction)).inside(area)
                    and not any(box.overlaps(other) for other in taken + markers)
                ),
                None,
            )
            if box is not None:
                label.box = box
                taken.append(box)
                break
    return labels
