"""Plot labels never overlap, and whiskers are drawn exactly where the captions promise them."""

from __future__ import annotations

import html
import itertools
import json
import re

import pytest
from test_report_helpers import make_study

from alignment_tax.reports import labels, plots
from alignment_tax.reports.comparisons import Comparator
from alignment_tax.reports.content import assemble
from alignment_tax.reports.plots import JudgeBar, TradeoffPoint

LABEL = re.compile(
    r'<text class="point-label" x="([-\d.]+)" y="([-\d.]+)"(?: text-anchor="(end|middle)")?[^>]*>([^<]*)</text>'
)


def drawn_labels(svg: str) -> list[tuple[str, labels.Box]]:
    """Each drawn point label and the box the placer kept free for it, read back from the SVG.

    This checks the placer's bookkeeping (its width estimate); what Chromium really draws is
    measured in tests/test_report_browser.py (test_crowded_labels_as_drawn_are_apart_and_near_their_points).
    """
    found = []
    for x, y, anchor, text in LABEL.findall(svg):
        x, y, text = float(x), float(y), html.unescape(text)
        width = labels.text_width(text)
        x0 = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
        found.append((text, labels.Box(x0, y - labels.ASCENT, x0 + width, y + labels.DESCENT)))
    return found


def assert_apart(boxes: list[labels.Box]) -> None:
    for first, second in itertools.combinations(boxes, 2):
        assert not first.overlaps(second), (first, second)


def test_points_on_one_spot_share_a_label():
    grouped = labels.group(
        [("a", 100, 100, "#f00"), ("b", 100, 100, "#f00"), ("c", 100.5, 100, "#0f0"), ("d", 150, 100, "#00f")]
    )
    assert [(label.text, label.color) for label in grouped] == [("a, b, c", "#333"), ("d", "#00f")]
    assert labels.group([("x", 0, 0, "#f00"), ("y", 0, 0, "#f00")])[0].color == "#f00"


def test_first_place_is_up_and_right_of_the_point():
    (label,) = labels.place([labels.Label("ab", 100, 100, "#000")], labels.Box(0, 0, 500, 500))
    # 2 characters at 7 px, 12 + 3 px high; 7 px up and right of the point; the baseline 3 px above the box's bottom.
    assert label.box == labels.Box(107, 78, 121, 93) and label.baseline == (107, 90) and label.leader is None


def test_near_points_get_labels_that_do_not_overlap_each_other_or_any_point():
    area = labels.Box(0, 0, 400, 300)
    named = [labels.Label(f"run-{i}", 200 + 4 * (i % 3), 150 + 3 * (i // 3), "#000") for i in range(9)]
    placed = labels.place(named, area)
    boxes = [label.box for label in placed]
    assert all(box is not None and box.inside(area) for box in boxes)
    assert_apart(boxes)
    markers = [
        labels.Box(p.x - labels.MARKER, p.y - labels.MARKER, p.x + labels.MARKER, p.y + labels.MARKER) for p in placed
    ]
    assert not any(box.overlaps(marker) for box in boxes for marker in markers)
    assert sum(label.leader is not None for label in placed) >= 1  # pushed away, so tied to its point by a line


def test_a_label_with_no_room_is_left_to_the_legend():
    placed = labels.place([labels.Label("a long name", 10, 10, "#000")], labels.Box(0, 0, 30, 30))
    assert placed[0].box is None and placed[0].leader is None


def test_tax_gain_labels_at_the_origin_and_near_it_do_not_overlap():
    points = [TradeoffPoint("base", 0, 0, "#777", is_base=True)]
    points += [TradeoffPoint(name, 0.0, 0.0, "#1f77b4") for name in ("sft", "rl", "dpo", "kto")]  # changed nothing
    points += [TradeoffPoint(f"near{i}", 0.06 * i, 0.06 * i, "#d62728") for i in range(1, 5)]  # a few pixels apart
    points += [TradeoffPoint("far", -3.0, 4.0, "#2ca02c")]
    svg = plots.tax_gain(points, "t", "x", "y")
    drawn = drawn_labels(svg)
    assert [text for text, _ in drawn][0] == "base, sft, rl, dpo, kto"  # one label for the five at the origin
    assert {text for text, _ in drawn} == {"base, sft, rl, dpo, kto", "near1", "near2", "near3", "near4", "far"}
    assert_apart([box for _, box in drawn])


def whiskers(svg: str) -> int:
    return svg.count('class="whisker"')


def test_whiskers_are_drawn_where_the_description_promises_them():
    with_ci = TradeoffPoint("a", -1.0, 2.0, "#f00", (-2.0, 0.0), (1.0, 3.0))
    without = TradeoffPoint("b", 1.0, 1.0, "#0f0")
    base = TradeoffPoint("base", 0.0, 0.0, "#777", is_base=True)
    svg = plots.tax_gain([base, with_ci], "t", "x", "y")
    assert whiskers(svg) == 2 and "whiskers are 95% paired bootstrap intervals</desc>" in svg
    svg = plots.tax_gain([base, with_ci, without], "t", "x", "y")
    assert whiskers(svg) == 2 and "whiskers are 95% paired bootstrap intervals (none for b: no interval)" in svg
    svg = plots.tax_gain([base, without], "t", "x", "y")
    assert (
        whiskers(svg) == 0
        and "no whiskers: no run has a paired bootstrap interval here" in svg
        and "whiskers are" not in svg
    )
    # A zero-width interval (identical runs) still shows: its end caps.
    svg = plots.tax_gain([base, TradeoffPoint("same", 0.0, 0.0, "#f00", (0.0, 0.0), (0.0, 0.0))], "t", "x", "y")
    assert whiskers(svg) == 2 and svg.count('stroke="#f00" stroke-width="1.5"/>') == 2 + 4


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
    assert judge.svg.count('stroke="#111" stroke-width="1.5"/>') == 1  # the one pair's whisker


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
    svg = plots.judge_bars([bar])
    assert 'stroke="#111" stroke-width="1.5"/>' not in svg and "whisker, where known" in svg


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
    svg = plots.curves(
        [("short", [1.0, 2.0], [0.9, 0.5], "#111111"), ("long", [1.0, 2.0, 3.0], [1.0, 0.8, 0.7], "#222222")],
        "loss",
        "loss",
    )
    lines = re.findall(r'<polyline[^>]*stroke="(#[0-9a-f]+)"', svg)
    assert lines == ["#222222"]  # the long series only
    assert svg.count('fill="#111111"') >= 2  # its two points as markers
