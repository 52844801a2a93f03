"""The plots as drawn: labels apart from each other and the points, whiskers exactly where the
captions promise them, literal and escaped run names, unique ids, the same SVG for the same input."""

from __future__ import annotations

import html
import itertools
import json
import re
import xml.dom.minidom

import numpy as np
import pytest
from test_report_helpers import INJECTION, make_study

from alignment_tax.reports import labels, plots, svg
from alignment_tax.reports.comparisons import Comparator
from alignment_tax.reports.content import assemble
from alignment_tax.reports.plots import JudgeBar, TradeoffPoint

BASE = TradeoffPoint("base", 0.0, 0.0, "#777777", is_base=True)
CROWD = (
    [BASE]
    + [TradeoffPoint(name, 0.0, 0.0, "#1f77b4") for name in ("sft", "rl", "dpo", "kto")]  # changed nothing
    + [TradeoffPoint(f"near{i}", 0.06 * i, 0.06 * i, "#d62728") for i in range(1, 5)]  # a few pixels apart
    + [TradeoffPoint("far", -3.0, 4.0, "#2ca02c")]
)


def drawn(svg_text: str, kind: str) -> list[str]:
    """The groups drawn with gid ``kind-<figure key>-…``, each as its SVG text."""
    return re.findall(rf'<g id="{kind}-[^"]*">.*?</g>', svg_text, re.S)


def label_texts(svg_text: str) -> list[str]:
    return [
        html.unescape(re.search(r"<text[^>]*>([^<]*)</text>", group)[1]) for group in drawn(svg_text, "point-label")
    ]


def whiskers(svg_text: str) -> int:
    return len(drawn(svg_text, "whisker"))


def test_points_on_one_spot_share_a_label():
    grouped = labels.group(
        [("a", 100, 100, "#f00"), ("b", 100, 100, "#f00"), ("c", 100.5, 100, "#0f0"), ("d", 150, 100, "#00f")]
    )
    assert grouped == [("a, b, c", 100, 100, "#333333"), ("d", 150, 100, "#00f")]
    assert labels.group([("x", 0, 0, "#f00"), ("y", 0, 0, "#f00")])[0][3] == "#f00"


def test_placed_labels_as_matplotlib_measures_them_are_apart_inside_and_near():
    with svg.drawing("test"):
        fig = svg.figure(560, 340)
        ax = fig.add_subplot()
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        named = [(f"run-{i}", 0.02 * (i % 3), 0.02 * (i // 3), "#000") for i in range(9)] + [
            ("edge", 0.99, 0.99, "#000")
        ]
        fig.draw_without_rendering()
        labels.place(ax, named, "k")
        renderer = svg.renderer(fig)
        boxes = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
        points = [ax.transData.transform((x, y)) for _, x, y, _ in named]
        area = ax.get_window_extent(renderer)
        leaders = [line for line in ax.lines if line.get_gid().startswith("leader-k-")]
    assert sorted(boxes) == sorted(name for name, *_ in named)  # every label found a place
    for first, second in itertools.combinations(boxes.values(), 2):
        assert not first.overlaps(second)
    for box in boxes.values():
        assert area.x0 <= box.x0 and box.x1 <= area.x1 and area.y0 <= box.y0 and box.y1 <= area.y1
        for x, y in points:  # no marker's disc (radius 5) reaches the text
            nearest = min(max(x, box.x0), box.x1), min(max(y, box.y0), box.y1)
            assert np.hypot(nearest[0] - x, nearest[1] - y) >= labels.MARKER
    assert leaders  # pushed away from a crowded spot, so tied to its point by a line


def _label_box_beside_a_line(gid: str):
    """The label of a point at the origin with a line from it to the upper right (45° on screen)."""
    with svg.drawing("test"):
        fig = svg.figure(400, 400)
        ax = fig.add_subplot()
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        ax.set_aspect("equal")
        ax.plot([0, 1], [0, 1], gid=gid)
        fig.draw_without_rendering()
        labels.place(ax, [("a label", 0.0, 0.0, "#000")], "k")
        renderer = svg.renderer(fig)
        (label,) = ax.texts
        box = label.get_window_extent(renderer)
        origin = ax.transData.transform((0, 0))
        line = ax.transData.transform(np.stack([np.linspace(0, 1, 200)] * 2, axis=1))
    crossed = bool(
        ((line[:, 0] > box.x0) & (line[:, 0] < box.x1) & (line[:, 1] > box.y0) & (line[:, 1] < box.y1)).any()
    )
    return box, origin, crossed


def test_a_label_is_not_drawn_over_a_whisker_or_frontier_line():
    # Control: a line the placer does not know (no whisker/Pareto/frontier gid) leaves the first place,
    # up and right, which this line crosses; a frontier there moves the label to the next free place.
    box, origin, crossed = _label_box_beside_a_line("something-else")
    assert crossed and box.x0 > origin[0] and box.y0 > origin[1]
    box, origin, crossed = _label_box_beside_a_line("frontier-k-0")
    assert not crossed and np.hypot(*(np.array([box.x0, box.y1]) - origin)) < 30  # still beside its point


def test_tax_gain_labels_the_origin_once_and_every_other_point():
    svg_text = plots.tax_gain(CROWD, "t", "x", "y")
    texts = label_texts(svg_text)
    assert texts[0] == "base, sft, rl, dpo, kto"  # one label for the five at the origin
    assert set(texts) == {"base, sft, rl, dpo, kto", "near1", "near2", "near3", "near4", "far"}
    assert len(drawn(svg_text, "marker")) == len(CROWD) and "<title>far: x -3, y +4 (Pareto front)</title>" in svg_text


def test_the_same_input_draws_the_same_svg_and_figures_never_share_an_id():
    first, again = plots.tax_gain(CROWD, "t", "x", "y"), plots.tax_gain(CROWD, "t", "x", "y")
    assert first == again
    other = plots.tax_gain(CROWD[:3], "t", "x", "y")
    ids = [re.findall(r' id="([^"]+)"', text) for text in (first, other)]
    assert all(len(found) == len(set(found)) for found in ids) and not set(ids[0]) & set(ids[1])


def test_an_svg_is_well_formed_titled_and_inlinable():
    text = plots.cdf([("run", np.arange(10.0), "#1f77b4", False)], "Per-token KL", "KL (nats)")
    assert text.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and text.endswith("</svg>")
    assert "<title>Per-token KL</title><desc>Empirical CDF of per-token KL (nats)" in text and 'role="img"' in text
    assert "<?xml" not in text and "<!DOCTYPE" not in text and "<dc:" not in text
    xml.dom.minidom.parseString(text)
    assert re.search(r"<text [^>]*>share of tokens ≤ x</text>", text)  # text stays text


def test_run_names_print_literally_and_stay_escaped():
    names = ["a$b$c", INJECTION, "x\x1b\u202e"]
    points = [BASE] + [TradeoffPoint(name, i, i, "#1f77b4") for i, name in enumerate(names, 1)]
    text = plots.tax_gain(points, "t", "x", "y")
    xml.dom.minidom.parseString(text)
    assert ">a$b$c</text>" in text  # not mathtext
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in text
    assert "\x1b" not in text and "\u202e" not in text and "x␛⟨U+202E⟩" in text


def test_tick_labels_are_round():
    text = plots.curves([("r", [0.0, 1.0, 2.0], [0.1, 0.2, 0.30000000000000004], "#111111")], "loss", "loss")
    ticks = re.findall(r"<text [^>]*>([−\d.]+)</text>", text)
    assert "0.30000000000000004" not in text and ticks and all(len(tick) <= 5 for tick in ticks), ticks


def test_a_cdf_is_cut_at_its_percentile_and_runs_to_the_cut():
    xs, ys = plots._quantile_curve(np.arange(1000.0), upper=500.0)
    assert max(xs) == 500.0 and (xs[-1], ys[-1]) == (500.0, 0.501)  # 501 of 1000 values are at most 500
    assert plots._quantile_curve(np.array([np.nan]), 1.0) == ([], [])


def test_whiskers_are_drawn_where_the_description_promises_them():
    with_ci = TradeoffPoint("a", -1.0, 2.0, "#f00", (-2.0, 0.0), (1.0, 3.0))
    without = TradeoffPoint("b", 1.0, 1.0, "#0f0")
    text = plots.tax_gain([BASE, with_ci], "t", "x", "y")
    assert whiskers(text) == 2 and "whiskers are 95% paired bootstrap intervals</desc>" in text
    text = plots.tax_gain([BASE, with_ci, without], "t", "x", "y")
    assert whiskers(text) == 2 and "whiskers are 95% paired bootstrap intervals (none for b: no interval)" in text
    text = plots.tax_gain([BASE, without], "t", "x", "y")
    assert whiskers(text) == 0 and "no whiskers: no run has a paired bootstrap interval here" in text
    assert "whiskers are" not in text
    # A zero-width interval (identical runs) still shows: its end caps, two on each whisker.
    text = plots.tax_gain([BASE, TradeoffPoint("same", 0.0, 0.0, "#f00", (0.0, 0.0), (0.0, 0.0))], "t", "x", "y")
    assert [group.count("<use ") for group in drawn(text, "whisker")] == [2, 2]


def test_whiskers_stay_inside_the_axes_and_the_front_is_a_staircase():
    points = [BASE, TradeoffPoint("a", -1.0, 2.0, "#f00", (-50.0, 0.5)), TradeoffPoint("b", 1.0, 1.0, "#0f0")]
    text = plots.tax_gain(points, "t", "x", "y")
    (whisker,) = drawn(text, "whisker")
    x, width = (
        float(v)
        for v in re.search(r'<clipPath id="[^"]+">\s*<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', text).groups()
    )
    ends = [float(v) for v in re.findall(r'<use [^>]* x="([\d.]+)"', whisker)]
    assert len(ends) == 2 and all(x <= end <= x + width for end in ends)  # both caps drawn, none cut off
    (front,) = drawn(text, "pareto")  # a (x -1, y 2) to b (x 1, y 1): three corners, dashed, in the legend
    assert len(re.findall(r"[ML] [\d.]+ [\d.]+", front)) == 3 and "stroke-dasharray" in front
    assert ">Pareto front</text>" in text


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("plots"), n_items=16)


def test_report_captions_match_the_drawn_whiskers(study):
    report = assemble([study["sft"], study["rl"]], judge_files=[study["judge"]], comparator=Comparator(n_resamples=50))
    for plot in report.plots["tradeoff"]:
        assert "Whiskers are 95% paired bootstrap intervals. Points on the same spot share one label." in plot.caption
        assert whiskers(plot.svg) == 4  # sft and rl, each on both axes
    (judge,) = report.plots["judge"]
    assert (
        "Dot and whisker: A's win rate, (wins + ties/2)/valid, with its 95% bootstrap interval; p: the sign test."
        in judge.caption
    )
    assert len(drawn(judge.svg, "win-interval")) == 1  # the one pair's whisker


def test_a_tradeoff_without_intervals_promises_none(study, tmp_path):
    """Runs without per-item records get no interval: the caption must not promise whiskers."""
    import shutil

    for name in ("sft", "rl"):
        shutil.copytree(study[name], tmp_path / name)
        shutil.rmtree(tmp_path / name / "samples")
        results = (tmp_path / name / "results.json").read_text(encoding="utf-8")
        (tmp_path / name / "results.json").write_text(
            results.replace('"samples": {', '"old_samples": {'), encoding="utf-8"
        )
    report = assemble([tmp_path / "sft", tmp_path / "rl"], comparator=Comparator(n_resamples=50))
    # Drift keeps its per-token interval (its tokens are not per-item records): its plots have x whiskers.
    for plot in [plot for plot in report.plots["tradeoff"] if not plot.name.endswith("_drift")]:
        assert whiskers(plot.svg) == 0 and "No whiskers: no run has a paired bootstrap interval here." in plot.caption


def test_judge_bars_without_an_interval_promise_no_whisker():
    bar = JudgeBar("a", "b", "t", 3, 1, 2, (3 + 0.5) / 6, None, 0.5)
    text = plots.judge_bars([bar])
    assert not drawn(text, "win-interval") and "whisker, where known" in text
    assert ">50%</text>" in text and ">win rate 58.3%, p = 0.5</text>" in text  # 3 wins of 6; (3 + 0.5)/6


def test_the_tax_is_plotted_on_every_tax_measure_and_all_wrong_answers_are_marked(study, tmp_path):
    """CMRC alone hides a tax where every answer is wrong: drift Δ NLL gets its own tax axis, and a
    CMRC difference between answers all wrong (EM 0 on both sides) is marked, not read as free."""
    import shutil

    for name in ("sft", "rl", "base"):
        shutil.copytree(study[name], tmp_path / name)
    base_results = tmp_path / "base" / "results.json"
    for name in ("sft", "rl"):
        path = tmp_path / name / "results.json"
        results = json.loads(path.read_text(encoding="utf-8"))
        results["base"]["results"] = str(base_results)
        path.write_text(json.dumps(results), encoding="utf-8")
    for path in (tmp_path / "sft" / "results.json", base_results):
        results = json.loads(path.read_text(encoding="utf-8"))
        results["tasks"]["cmrc2018"]["em"] = 0.0
        path.write_text(json.dumps(results), encoding="utf-8")
    report = assemble([tmp_path / "sft", tmp_path / "rl"], comparator=Comparator(n_resamples=50))
    names = [plot.name for plot in report.plots["tradeoff"]]
    assert names == [
        "tax_gain_bo_zh_mt",
        "tax_gain_bo_zh_mt_drift",
        "tax_gain_bo_headline",
        "tax_gain_bo_headline_drift",
    ]
    cmrc, drift = report.plots["tradeoff"][:2]
    assert "sft (EM 0)" in cmrc.svg and "rl (EM 0)" not in cmrc.svg and "not meaningful" in cmrc.caption
    assert "(EM 0)" not in drift.svg and "nats/token" in drift.svg
    sft = next(run for run in report.runs if run.name == "sft")
    # Drift Δ NLL above 0 is a tax: plotted left of the origin, as −Δ NLL.
    assert sft.drift["delta_nll"]["mean"] > 0 and "x -" in drift.svg.split("sft: ")[1][:6]
    # The tables mark the same difference, and both reports say what the mark means.
    from alignment_tax.reports.html_report import render
    from alignment_tax.reports.markdown_report import render as markdown

    html_text, markdown_text = render(report), markdown(report, "plots")[0]
    assert "EM 0 on both sides" in html_text and "EM 0 on both sides" in markdown_text
    assert "also marks a difference on cmrc2018" in markdown_text


def test_a_loss_of_one_or_two_steps_is_drawn_as_points_not_a_curve():
    text = plots.curves(
        [("short", [1.0, 2.0], [0.9, 0.5], "#111111"), ("long", [1.0, 2.0, 3.0], [1.0, 0.8, 0.7], "#222222")],
        "loss",
        "loss",
    )
    short, long = drawn(text, "series")
    assert "<path d=" not in short and short.count("<use ") == 2  # its two points as markers, no line
    assert "<path d=" in long and "<use " not in long
