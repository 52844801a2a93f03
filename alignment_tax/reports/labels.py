"""Point labels for the tax-against-gain plots that overlap neither each other nor any point.

Runs often land on the same spot (every run that changed nothing sits at the origin with the
base): points within ``SAME_SPOT`` pixels share one label (``a, b, c``). Each label then takes the
first free place of a fixed ring search (:func:`place`), measured by matplotlib in the fonts it
draws with; one set further than ``LEADER_FROM`` from its point gets a thin leader line to it.
adjustText was tried first: on the crowded fixtures its force-directed moves left labels over
markers or outside the axes, and dropping those lost half the labels, so placement is this small
deterministic search. A place no whisker, Pareto front or frontier line crosses is preferred: a label
drawn over a line is hard to read. Sizes are pixels (figures are drawn at 72 dpi: one SVG unit is
one pixel).
"""

from __future__ import annotations

import math

import numpy as np

from alignment_tax.reports import svg

SAME_SPOT = 2.0
MARKER = 5.0  # a point's radius
PAD = 2.0  # kept free around each label: a browser's font box is a little taller than matplotlib's
LEADER_FROM = 12.0
DISTANCES = (8.0, 16.0, 28.0, 42.0, 60.0, 82.0)  # from the point's centre to the box's near side
DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))  # y up: NE first
GROUP_LIMIT = 60  # characters of a shared label before it is cut (the legend has every name)
LINES = ("whisker-", "pareto-", "frontier-")  # gids of the lines a label should not be drawn over
STEP = 2.0  # pixels between the sampled points of those lines


def group(points: list[tuple[str, float, float, str]]) -> list[tuple[str, float, float, str]]:
    """``points`` (name, x, y, color) in pixels; those on one spot become one label, grey if colours differ."""
    spots: list[tuple[list[str], float, float, list[str]]] = []
    for name, x, y, colour in points:
        spot = next((s for s in spots if math.hypot(x - s[1], y - s[2]) < SAME_SPOT), None)
        if spot is None:
            spots.append(([name], x, y, [colour]))
        else:
            spot[0].append(name)
            spot[3].append(colour)
    result = []
    for names, x, y, colours in spots:
        result.append(
            (svg.shorten(", ".join(names), GROUP_LIMIT), x, y, colours[0] if len(set(colours)) == 1 else "#333333")
        )
    return result


def place(ax, points: list[tuple[str, float, float, str]], key: str) -> None:
    """Label ``points`` (name, data x, data y, color) on ``ax``, fixing its figure's layout first.

    Each label, in order, goes to the first of a ring of places around its point, at growing
    distances, whose box (as matplotlib measures the text, plus ``PAD``) overlaps no label placed
    before it, no marker and nothing outside the axes; with none free it is left out."""
    from matplotlib.transforms import Bbox

    ax.figure.draw_without_rendering()  # the layout, then the pixels the labels are placed in
    ax.figure.set_layout_engine("none")
    renderer, to_data = svg.renderer(ax.figure), ax.transData.inverted().transform
    pixels = [(name, *ax.transData.transform((x, y)), colour) for name, x, y, colour in points]
    area = ax.get_window_extent(renderer)
    taken = [Bbox.from_extents(x - MARKER, y - MARKER, x + MARKER, y + MARKER) for _, x, y, _ in pixels]
    lines = _line_pixels(ax)
    for index, (label, px, py, colour) in enumerate(group(pixels)):
        text = ax.text(0, 0, label, color=colour, ha="left", va="bottom", zorder=5, gid=f"point-label-{key}-{index}")
        size = text.get_window_extent(renderer).padded(PAD)
        w, h = size.width, size.height
        # d from the point in direction (dx, dy), the box's near side or centre line towards it
        places = (
            Bbox.from_bounds(px + dx * d + (dx - 1) * w / 2, py + dy * d + (dy - 1) * h / 2, w, h)
            for d in DISTANCES
            for dx, dy in DIRECTIONS
        )
        free = [
            b
            for b in places
            if area.contains(b.x0, b.y0) and area.contains(b.x1, b.y1) and not any(b.overlaps(o) for o in taken)
        ]
        box = next((b for b in free if not b.count_contains(lines)), free[0] if free else None)
        if box is None:
            text.remove()
            continue
        taken.append(box)
        text.set_position(to_data((box.x0 + PAD, box.y0 + PAD)))
        inner = box.padded(-PAD)
        edge = min(max(px, inner.x0), inner.x1), min(max(py, inner.y0), inner.y1)
        if math.hypot(edge[0] - px, edge[1] - py) > LEADER_FROM:  # too far to read as the point's: a line to it
            (x0, y0), (x1, y1) = to_data((px, py)), to_data(edge)
            ax.plot([x0, x1], [y0, y1], color="#999999", lw=0.8, zorder=1.5, gid=f"leader-{key}-{index}")


def _line_pixels(ax) -> np.ndarray:
    """Points every ``STEP`` pixels along the plot's whiskers, Pareto front and frontier lines."""
    found = [np.empty((0, 2))]
    for line in ax.lines:
        if not (line.get_gid() or "").startswith(LINES):
            continue
        path = ax.transData.transform(line.get_xydata())
        for start, end in zip(path[:-1], path[1:]):
            steps = max(2, math.ceil(math.dist(start, end) / STEP) + 1)
            found.append(np.linspace(start, end, steps))
    return np.concatenate(found)
