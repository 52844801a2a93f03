"""The report's plots, drawn with matplotlib (see :mod:`.svg`), as standalone SVG strings.

* :func:`tax_gain`: x = one tax against the base (Δ CMRC Avg, −Δ drift NLL, …), y = the task metric's gain, one
  point per run (the base hollow at the origin), 95% whiskers on both axes, and the Pareto front; the
  strengths of one swept adapter (``alignment-tax sweep``) joined in order of strength, from the
  base (strength 0) outwards: that adapter's tax–gain frontier.
* :func:`cdf`: empirical CDFs of per-token values (KL, NLL), one line per run.
* :func:`judge_bars`: win / tie / loss shares of each judged pair, with the win-rate interval.
* :func:`curves`: a training-log series against step, one line per run.

Artists the tests and tooltips find carry a gid (an SVG element id) prefixed by the figure's key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from alignment_tax.reports import labels
from alignment_tax.reports.svg import drawing, figure, finish, key_of, shorten, text

CDF_POINTS = 200
FEW_POINTS = 3  # a training series with fewer logged steps is drawn as points
PARETO = "#f0a030"
WHISKER = {"lw": 1.5, "ms": 6, "mew": 1.5, "zorder": 2}


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


def whisker_note(points: list[TradeoffPoint]) -> str:
    """What the whiskers are, promised only as far as they are drawn."""
    runs = [point for point in points if not point.is_base]
    without = [point.label for point in runs if not (point.x_ci or point.y_ci)]
    if len(without) == len(runs):
        return "no whiskers: no run has a paired bootstrap interval here"
    return "whiskers are 95% paired bootstrap intervals" + (
        f" (none for {', '.join(without)}: no interval)" * bool(without)
    )


def padded(values: Sequence[float], include_zero: bool = False, pad: float = 0.06) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)] + ([0.0] if include_zero else [])
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    margin = (high - low) * pad if high > low else abs(low) * 0.1 or 1.0
    return low - margin, high + margin


def _axes(fig, title: str, x_label: str, y_label: str):
    ax = fig.add_subplot()
    # The figure's title, not the axes': the layout keeps the legend (outside, right) below it.
    fig.suptitle(text(title), x=0.01, ha="left", fontsize=13, fontweight="bold")
    ax.set_xlabel(text(x_label), fontsize=12)
    ax.set_ylabel(text(y_label), fontsize=12)
    ax.grid(color="#eeeeee", linewidth=0.8)
    ax.set_axisbelow(True)
    return ax


def _legend(fig, handles: list) -> None:
    for handle in handles:
        handle.set_label(shorten(text(handle.get_label()), 20))
    fig.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=11)


def tax_gain(points: list[TradeoffPoint], title: str, x_label: str, y_label: str) -> str:
    key = key_of("tax_gain", title, x_label, y_label, [(p.label, p.x, p.y, p.x_ci, p.y_ci) for p in points])
    front = pareto_front([(p.x, p.y) for p in points])
    with drawing(key):
        fig = figure(560, 340)
        ax = _axes(fig, title, x_label, y_label)
        xs = [p.x for p in points] + [v for p in points if p.x_ci for v in p.x_ci]
        ys = [p.y for p in points] + [v for p in points if p.y_ci for v in p.y_ci]
        (x0, x1), (y0, y1) = padded(xs, True, 0.1), padded(ys, True, 0.1)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        for line in (ax.axvline, ax.axhline):
            line(0, color="#bbbbbb", linewidth=1, linestyle=(0, (3, 3)), zorder=1)
        handles = []
        if len(front) > 1:
            steps = [(points[front[0]].x, points[front[0]].y)]
            for index in front[1:]:  # the front as a staircase: its dominated region
                steps += [(steps[-1][0], points[index].y), (points[index].x, points[index].y)]
            handles += ax.plot(
                *zip(*steps), color=PARETO, lw=2, ls=(0, (6, 3)), label="Pareto front", gid=f"pareto-{key}"
            )
        handles += _frontiers(ax, points, key)
        tips = {}
        for index, point in enumerate(points):
            for axis, ci, (low, high) in (("x", point.x_ci, (x0, x1)), ("y", point.y_ci, (y0, y1))):
                if ci:  # clamped to the axes; the caps show however short the interval
                    ends = [min(max(v, low), high) for v in ci]
                    line = (ends, [point.y] * 2) if axis == "x" else ([point.x] * 2, ends)
                    gid = f"whisker-{key}-{index}-{axis}"
                    ax.plot(*line, color=point.color, marker="|_"[axis == "y"], gid=gid, **WHISKER)
            gid = f"marker-{key}-{index}"
            hollow = {"mfc": "white", "mec": point.color, "mew": 2}
            style = hollow if point.is_base else {"mfc": point.color, "mec": "white"}
            handles += ax.plot([point.x], [point.y], "o", ms=10, zorder=4, gid=gid, label=point.label, **style)
            tips[gid] = f"{point.label}: x {point.x:+.4g}, y {point.y:+.4g}" + (" (Pareto front)" * (index in front))
        _legend(fig, handles)
        labels.place(ax, [(shorten(text(p.label), 18), p.x, p.y, p.color) for p in points], key)
        return finish(fig, title, f"{y_label} against {x_label}; up and right is better; {whisker_note(points)}", tips)


def _frontiers(ax, points: list[TradeoffPoint], key: str) -> list:
    """One line per swept adapter through its strengths in order, from the base at the origin."""
    curves: dict[str, list[TradeoffPoint]] = {}
    for point in points:
        if point.curve is not None and point.scale is not None:
            curves.setdefault(point.curve, []).append(point)
    handles = []
    for index, (name, members) in enumerate(curves.items()):
        members.sort(key=lambda point: point.scale)
        path = ([(0.0, 0.0)] if members[0].scale > 0 else []) + [(point.x, point.y) for point in members]
        if len(path) < 2:
            continue
        # A training stage's adapter folder is named "adapter": the run is the folder above it.
        source = PurePath(name)
        shown = source.parent.name if source.name == "adapter" and source.parent.name else source.name
        label = f"{shorten(shown, 10)} frontier"
        handles += ax.plot(
            *zip(*path), color=members[-1].color, lw=1.5, zorder=3, label=label, gid=f"frontier-{key}-{index}"
        )
    return handles


def _quantile_curve(values: np.ndarray, upper: float) -> tuple[list[float], list[float]]:
    """The CDF up to ``upper``, ending on the share of values at or below it: the tail is drawn to the cut."""
    values = np.sort(values[np.isfinite(values)])
    if values.size == 0:
        return [], []
    levels = np.linspace(0.0, 1.0, CDF_POINTS)
    xs = np.quantile(values, levels)
    kept = [(float(x), float(level)) for x, level in zip(xs, levels) if x <= upper]
    if xs[-1] > upper:
        kept.append((upper, float(np.mean(values <= upper))))
    return [x for x, _ in kept], [y for _, y in kept]


def cdf(series: list[tuple[str, np.ndarray, str, bool]], title: str, x_label: str, clip: float = 99.5) -> str:
    """``series``: (label, values, color, dashed). The x axis ends at the ``clip`` percentile of all values."""
    pooled = np.concatenate([values[np.isfinite(values)] for _, values, _, _ in series]) if series else np.zeros(1)
    low = float(np.min(pooled)) if pooled.size else 0.0
    upper = float(np.percentile(pooled, clip)) if pooled.size else 1.0
    with drawing(key_of("cdf", title, x_label, [(label, values.tobytes()) for label, values, _, _ in series])):
        fig = figure(560, 340)
        ax = _axes(fig, title, f"{x_label} (axis cut at p{clip:g})", "share of tokens ≤ x")
        handles = []
        for label, values, colour, dashed in series:
            handles += ax.plot(
                *_quantile_curve(values, upper), color=colour, lw=2, ls=(0, (5, 3)) if dashed else "-", label=label
            )
        ax.set_xlim(*padded([low, upper], pad=0.02))
        ax.set_ylim(0, 1)
        _legend(fig, handles)
        return finish(fig, title, f"Empirical CDF of per-token {x_label}; further left is closer to the base")


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
    key = key_of("judge", [vars(bar) for bar in bars])
    title = "LLM judge: wins, ties and losses per pair"
    with drawing(key):
        fig = figure(720, 90 + 46 * len(bars))
        ax = _axes(fig, title, "", "")
        ax.set_xlim(0, 100)
        ax.set_ylim(len(bars) - 0.4, -0.6)
        ax.xaxis.set_major_formatter("{x:.0f}%")
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.grid(axis="y", visible=False)
        rows = [
            f"{shorten(text(b.label_a), 14)} vs {shorten(text(b.label_b), 14)}\n{text(b.task)}, "
            f"n = {b.wins + b.ties + b.losses}"
            for b in bars
        ]
        ax.set_yticks(range(len(bars)), rows, fontsize=10)
        for row, bar in enumerate(bars):
            n, left = bar.wins + bar.ties + bar.losses, 0.0
            for count, colour, name in zip((bar.wins, bar.ties, bar.losses), colors, ("A wins", "tie", "B wins")):
                share = 100 * count / n if n else 0.0
                ax.barh(row, share, left=left, height=0.5, color=colour, label=name if row == 0 else None)
                if share >= 8:
                    ax.text(left + share / 2, row, f"{share:.0f}%", ha="center", va="center", fontsize=11)
                left += share
            if bar.win_rate is not None:
                if bar.ci:
                    interval, gid = [100 * v for v in bar.ci], f"win-interval-{key}-{row}"
                    ax.plot(interval, [row + 0.38] * 2, color="#111111", marker="|", gid=gid, **WHISKER)
                ax.plot([100 * bar.win_rate], [row + 0.38], "o", color="#111111", ms=6)
                p = f", p = {bar.p_value:.3g}" if bar.p_value is not None else ""
                ax.text(102, row, f"win rate {100 * bar.win_rate:.1f}%{p}", va="center", fontsize=11, clip_on=False)
        fig.legend(loc="outside upper right", ncols=3, frameon=False, fontsize=10)
        return finish(
            fig,
            "LLM judge: wins, ties and losses",
            "Stacked bars: share of valid pairs A wins, ties, B wins; dot: A's win rate (wins + ties/2); "
            "whisker, where known: its 95% interval",
        )


def curves(series: list[tuple[str, list[float], list[float], str]], title: str, y_label: str) -> str:
    """``series``: (label, steps, values, color)."""
    from matplotlib.ticker import MaxNLocator

    key = key_of("curves", title, y_label, series)
    with drawing(key):
        fig = figure(420, 260)
        ax = _axes(fig, title, "step", y_label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        handles = []
        for index, (label, steps, values, colour) in enumerate(series):
            points = [(x, y) for x, y in zip(steps, values) if math.isfinite(y)]
            xs, ys = [x for x, _ in points], [y for _, y in points]
            # One or two logged steps are not a curve: a line through them would show a trend.
            style = {"ls": "none", "marker": "o", "ms": 7} if len(points) < FEW_POINTS else {"lw": 1.5}
            handles += ax.plot(xs, ys, color=colour, label=label, gid=f"series-{key}-{index}", **style)
        _legend(fig, handles)
        return finish(fig, title, f"{y_label} against training step")
