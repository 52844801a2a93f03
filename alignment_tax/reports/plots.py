"""The report's plots as standalone SVG strings.

* :func:`tax_gain`: x = one tax against the base (Δ CMRC Avg, −Δ drift NLL, …), y = the task metric's gain, one
  point per run (the base at the origin), 95% whiskers on both axes, and the Pareto front; the
  strengths of one swept adapter (``alignment-tax sweep``) joined in order of strength, from the
  base (strength 0) outwards: that adapter's tax–gain frontier.
* :func:`cdf`: empirical CDFs of per-token values (KL, NLL), one line per run.
* :func:`judge_bars`: win / tie / loss shares of each judged pair, with the win-rate interval.
* :func:`curves`: a training-log series against step, one line per run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from alignment_tax.reports import labels
from alignment_tax.reports.svg import BASE_COLOR, Frame, document, padded, shorten, text

CDF_POINTS = 200
FEW_POINTS = 3  # a training series with fewer logged steps is drawn as points


@dataclass
class TradeoffPoint:
    label: str
    x: float
    y: float
    color: str
    x_ci: tuple[float, float] | None = None
    y_ci: tuple[float, float] | None = None
    is_base: bool = False
    curve: str | None = None  # the adapter a swept run was scaled from
    scale: float | None = None  # its strength


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher is better), by x."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((ox >= x and oy >= y) and (ox > x or oy > y) for j, (ox, oy) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def tax_gain(points: list[TradeoffPoint], title: str, x_label: str, y_label: str) -> str:
    xs = [p.x for p in points] + [v for p in points if p.x_ci for v in p.x_ci]
    ys = [p.y for p in points] + [v for p in points if p.y_ci for v in p.y_ci]
    frame = Frame(
        title, x_label, y_label, padded(xs, include_zero=True, pad=0.1), padded(ys, include_zero=True, pad=0.1)
    )
    frame.line(0, frame.y0, 0, frame.y1, "#bbb", dash="3 3")
    frame.line(frame.x0, 0, frame.x1, 0, "#bbb", dash="3 3")
    front = pareto_front([(p.x, p.y) for p in points])
    if len(front) > 1:
        steps = []
        for index in front:
            point = points[index]
            if steps:
                steps.append((steps[-1][0], point.y))  # the front as a staircase: its dominated region
            steps.append((point.x, point.y))
        frame.path(steps, "#f0a030", width=2, dash="6 3")
        frame.add_legend("Pareto front", "#f0a030", "dashed")
    _frontiers(frame, points)
    for point in points:
        if point.x_ci:
            _whisker(
                frame, (frame.clamp_x(point.x_ci[0]), point.y), (frame.clamp_x(point.x_ci[1]), point.y), point.color
            )
        if point.y_ci:
            _whisker(
                frame, (point.x, frame.clamp_y(point.y_ci[0])), (point.x, frame.clamp_y(point.y_ci[1])), point.color
            )
    for index, point in enumerate(points):
        tip = f"{point.label}: x {point.x:+.4g}, y {point.y:+.4g}" + (" (Pareto front)" if index in front else "")
        frame.point(point.x, point.y, point.color, hollow=point.is_base, tip=tip)
        frame.add_legend(point.label, point.color, "hollow" if point.is_base else "point")
    _point_labels(frame, points)
    return frame.svg(f"{y_label} against {x_label}; up and right is better; {whisker_note(points)}")


def _frontiers(frame: Frame, points: list[TradeoffPoint]) -> None:
    """One polyline per swept adapter through its strengths in order, from the base at the origin."""
    curves: dict[str, list[TradeoffPoint]] = {}
    for point in points:
        if point.curve is not None and point.scale is not None:
            curves.setdefault(point.curve, []).append(point)
    for name, members in curves.items():
        members.sort(key=lambda point: point.scale)
        path = [(0.0, 0.0)] if members[0].scale > 0 else []
        path += [(point.x, point.y) for point in members]
        if len(path) < 2:
            continue
        frame.path(path, members[-1].color, width=1.5)
        # A training stage's adapter folder is named "adapter": the run is the folder above it.
        source = PurePath(name)
        shown = source.parent.name if source.name == "adapter" and source.parent.name else source.name
        frame.add_legend(f"{shorten(shown, 10)} frontier", members[-1].color)


def whisker_note(points: list[TradeoffPoint]) -> str:
    """What the whiskers are, promised only as far as they are drawn."""
    with_ci = [point for point in points if not point.is_base and (point.x_ci or point.y_ci)]
    runs = [point for point in points if not point.is_base]
    if not with_ci:
        return "no whiskers: no run has a paired bootstrap interval here"
    note = "whiskers are 95% paired bootstrap intervals"
    without = [point.label for point in runs if point not in with_ci]
    return note + (f" (none for {', '.join(without)}: no interval)" if without else "")


def _whisker(frame: Frame, start: tuple[float, float], end: tuple[float, float], colour: str) -> None:
    """An interval as a line with end caps, in pixels so the caps show however short the interval."""
    (x1, y1), (x2, y2) = (frame.sx(start[0]), frame.sy(start[1])), (frame.sx(end[0]), frame.sy(end[1]))
    vertical = x1 == x2
    parts = [
        f'<line class="whisker" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" stroke-width="1.5"/>'
    ]
    for x, y in ((x1, y1), (x2, y2)):
        cap = (x - 3, y, x + 3, y) if vertical else (x, y - 3, x, y + 3)
        parts.append(
            '<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="1.5"/>'.format(
                *cap, colour
            )
        )
    frame.parts += parts


def _point_labels(frame: Frame, points: list[TradeoffPoint]) -> None:
    area = labels.Box(frame.left, frame.top, frame.width - frame.right, frame.height - frame.bottom)
    named = labels.group(
        [(shorten(point.label, 18), frame.sx(point.x), frame.sy(point.y), point.color) for point in points]
    )
    for label in labels.place(named, area):
        if label.box is None:
            continue
        if label.leader:
            frame.parts.append(
                '<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#999" stroke-width="0.8"/>'.format(
                    *label.leader
                )
            )
        x, y = label.baseline
        anchor = ""
        # The box is the placer's generous width estimate; a real font draws the text narrower. Set
        # against the box's side that faces the point, so that the text, not an empty margin, is
        # next to it: a label left of its point would otherwise float up to 30% of its width away.
        if label.box.x1 <= label.x:
            x, anchor = label.box.x1, ' text-anchor="end"'
        elif label.box.x0 < label.x:  # above or below the point, centred on it
            x, anchor = (label.box.x0 + label.box.x1) / 2, ' text-anchor="middle"'
        frame.parts.append(
            f'<text class="point-label" x="{x:.1f}" y="{y:.1f}"{anchor} font-size="11" fill="{label.color}">'
            f"{text(label.text)}</text>"
        )


def _quantile_curve(values: np.ndarray, upper: float) -> list[tuple[float, float]]:
    values = np.sort(values[np.isfinite(values)])
    if values.size == 0:
        return []
    levels = np.linspace(0.0, 1.0, CDF_POINTS)
    xs = np.quantile(values, levels)
    return [(float(min(x, upper)), float(level)) for x, level in zip(xs, levels) if x <= upper] + (
        [(upper, float(np.mean(values <= upper)))] if xs[-1] > upper else []
    )


def cdf(series: list[tuple[str, np.ndarray, str, bool]], title: str, x_label: str, clip: float = 99.5) -> str:
    """``series``: (label, values, color, dashed). The x axis ends at the ``clip`` percentile of all values."""
    pooled = np.concatenate([values[np.isfinite(values)] for _, values, _, _ in series]) if series else np.zeros(1)
    low = float(np.min(pooled)) if pooled.size else 0.0
    upper = float(np.percentile(pooled, clip)) if pooled.size else 1.0
    frame = Frame(
        title, f"{x_label} (axis cut at p{clip:g})", "share of tokens ≤ x", padded([low, upper], pad=0.02), (0.0, 1.0)
    )
    for label, values, colour, dashed in series:
        frame.path(_quantile_curve(values, upper), colour, width=2, dash="5 3" if dashed else "")
        frame.add_legend(label, colour, "dashed" if dashed else "line")
    return frame.svg(f"Empirical CDF of per-token {x_label}; further left is closer to the base")


@dataclass
class JudgeBar:
    label_a: str
    label_b: str
    task: str
    wins: int
    ties: int
    losses: int
    win_rate: float | None
    ci: tuple[float, float] | None
    p_value: float | None


def judge_bars(bars: list[JudgeBar], colors: tuple[str, str, str] = ("#2b8cbe", "#cccccc", "#e6550d")) -> str:
    """One stacked bar per judged pair: A wins | ties | B wins, with A's win rate and its 95% interval."""
    width, left, right, row = 720, 200, 150, 46
    height = 60 + row * len(bars) + 30
    plot = width - left - right
    parts = [
        '<text x="12" y="20" font-size="13" font-weight="600" fill="#111">LLM judge: wins, ties and losses per pair</text>'
    ]
    for tick in (0, 25, 50, 75, 100):
        x = left + plot * tick / 100
        parts.append(f'<line x1="{x:.1f}" y1="34" x2="{x:.1f}" y2="{height - 30}" stroke="#eee"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 14}" font-size="11" text-anchor="middle" fill="#444">{tick}%</text>'
        )
    for index, bar in enumerate(bars):
        y = 44 + index * row
        n = bar.wins + bar.ties + bar.losses
        parts.append(
            f'<text x="{left - 8}" y="{y + 12}" font-size="11" text-anchor="end" fill="#222">{text(shorten(bar.label_a, 14))} vs {text(shorten(bar.label_b, 14))}</text>'
        )
        parts.append(
            f'<text x="{left - 8}" y="{y + 26}" font-size="10" text-anchor="end" fill="#666">{text(bar.task)}, n = {n}</text>'
        )
        x = float(left)
        for count, colour, name in (
            (bar.wins, colors[0], bar.label_a + " wins"),
            (bar.ties, colors[1], "ties"),
            (bar.losses, colors[2], bar.label_b + " wins"),
        ):
            share = count / n if n else 0.0
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{plot * share:.1f}" height="26" fill="{colour}">'
                f"<title>{text(name)}: {count} ({100 * share:.1f}%)</title></rect>"
            )
            if share >= 0.08:
                parts.append(
                    f'<text x="{x + plot * share / 2:.1f}" y="{y + 17}" font-size="11" text-anchor="middle" fill="#111">{100 * share:.0f}%</text>'
                )
            x += plot * share
        if bar.win_rate is not None:
            wx = left + plot * bar.win_rate
            if bar.ci:
                lo, hi = (left + plot * v for v in bar.ci)
                parts.append(
                    f'<line x1="{lo:.1f}" y1="{y + 32}" x2="{hi:.1f}" y2="{y + 32}" stroke="#111" stroke-width="1.5"/>'
                )
                parts += [
                    f'<line x1="{v:.1f}" y1="{y + 29}" x2="{v:.1f}" y2="{y + 35}" stroke="#111"/>' for v in (lo, hi)
                ]
            parts.append(f'<circle cx="{wx:.1f}" cy="{y + 32}" r="3" fill="#111"/>')
            p = f", p = {bar.p_value:.3g}" if bar.p_value is not None else ""
            parts.append(
                f'<text x="{left + plot + 8}" y="{y + 17}" font-size="11" fill="#222">win rate {100 * bar.win_rate:.1f}%{p}</text>'
            )
    legend = ((colors[0], "A wins"), (colors[1], "tie"), (colors[2], "B wins"))
    for index, (colour, name) in enumerate(legend):
        x = width - 220 + 70 * index
        parts.append(
            f'<rect x="{x}" y="11" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="20" font-size="10" fill="#222">{name}</text>'
        )
    return document(
        width,
        height,
        "LLM judge: wins, ties and losses",
        "".join(parts),
        "Stacked bars: share of valid pairs A wins, ties, B wins; dot: A's win rate (wins + ties/2); whisker, where known: its 95% interval",
    )


def curves(series: list[tuple[str, list[float], list[float], str]], title: str, y_label: str) -> str:
    """``series``: (label, steps, values, color)."""
    xs = [x for _, steps, _, _ in series for x in steps]
    ys = [y for _, _, values, _ in series for y in values if math.isfinite(y)]
    frame = Frame(title, "step", y_label, padded(xs, pad=0.0), padded(ys), width=420, height=260, right=110)
    for label, steps, values, colour in series:
        points = [(x, y) for x, y in zip(steps, values) if math.isfinite(y)]
        if len(points) < FEW_POINTS:
            # One or two logged steps are not a curve: a line through them would show a trend.
            for point in points:
                frame.point(*point, colour)
        else:
            frame.path(points, colour, width=1.5)
        frame.add_legend(label, colour, "point" if len(points) < FEW_POINTS else "line")
    return frame.svg(f"{y_label} against training step")


def base_color() -> str:
    return BASE_COLOR
