"""Output health in the report: the health block, and a "gain" made of degenerate outputs marked, not green.

The issue's example: the base answers bo_zh_mt with nothing, the SFT run with one character
repeated; similarity then rises by about +0.69 with p < 0.001, which the report used to show as a
bold green success.
"""

from __future__ import annotations

import json
import re

import pytest
from test_report_helpers import make_study

from alignment_tax.metrics.health import flag_items
from alignment_tax.reports.comparisons import TARGET_LANGUAGE, Comparator
from alignment_tax.reports.content import assemble
from alignment_tax.reports.html_report import render
from alignment_tax.reports.markdown_report import render as render_markdown
from alignment_tax.reports.runs import load_runs

N = 24
TASK = "bo_zh_mt"


def _rewrite(folder, task, change, record_health: bool) -> None:
    """Change a run's per-item records of a task, and its results (means; health as evaluate writes it)."""
    path = folder / "samples" / f"{task}.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        change(row)
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    for name in results["tasks"][task]:
        if name not in ("bleu", "chrf") and not name.endswith("_stderr"):  # the mean metrics
            results["tasks"][task][name] = sum(row[name] for row in rows) / len(rows)
    if record_health:
        results.setdefault("health", {})[task] = flag_items(rows, TARGET_LANGUAGE[task])
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")


def _empty(row):
    row.update(output="", similarity=0.0, lang_consistency=0.0, bleu=0.0, chrf=0.0)


def _repeated(row):
    row.update(output="哈" * 40, similarity=0.69 + (int(row["id"].split("_")[1]) % 3) * 0.01, lang_consistency=1.0)


def issue_study(root, record_health: bool):
    paths = make_study(root, n_items=N)
    _rewrite(paths["base"], TASK, _empty, record_health)
    _rewrite(paths["sft"], TASK, _repeated, record_health)
    return paths


@pytest.fixture(scope="module", params=[True, False], ids=["recorded", "derived"])
def issue(request, tmp_path_factory):
    paths = issue_study(tmp_path_factory.mktemp("issue"), record_health=request.param)
    report = assemble([paths["sft"], paths["rl"]], comparator=Comparator(n_resamples=300))
    return paths, report


def _similarity_delta(report):
    sft = next(run for run in report.runs if run.name == "sft")
    return next(d for d in report.comparisons[TASK] if d.a is sft and d.b.is_base and d.metric == "similarity")


def test_the_issues_gain_is_marked_not_a_success(issue):
    from alignment_tax.reports.formatting import direction

    _, report = issue
    delta = _similarity_delta(report)
    assert delta.difference == pytest.approx(0.70, abs=0.011) and delta.significant and delta.p_value < 0.001
    assert direction(delta) == "suspect"
    # A healthy run's gain keeps its colour: RL on the headline task, SFT's BLEU loss stays red.
    rl = next(run for run in report.runs if run.name == "rl")
    headline = next(d for d in report.comparisons["bo_headline"] if d.a is rl and d.b.is_base and d.metric == "rouge_l")
    assert direction(headline) == "better"
    # Against a baseline that loops, a healthy run's "loss" is not a loss either.
    gap = next(d for d in report.comparisons[TASK] if d.a is rl and d.b.name == "sft" and d.metric == "similarity")
    assert gap.difference < 0 and gap.significant and direction(gap) == "suspect"
    # The base answered nothing: a healthy run's gain over it stays a success.
    assert (
        direction(next(d for d in report.comparisons[TASK] if d.a is rl and d.b.is_base and d.metric == "similarity"))
        == "better"
    )


def test_html_marks_the_gain_amber_with_its_reason(issue):
    _, report = issue
    html = render(report)
    spans = re.findall(r'<(?:span|td) class="([^"]*)" title="sft − base on bo_zh_mt similarity([^"]*)">([^<]*)<', html)
    assert spans, "the similarity Δ of sft against its base is not in the page"
    for classes, title, text in spans:
        assert "suspect" in classes.split() and "better" not in classes.split()
        assert "gain not meaningful" in title and text.startswith("⚠")
    assert "⚠ amber: a difference won by outputs that are mostly empty or repetitive" in html


def test_html_health_block_and_columns(issue):
    paths, report = issue
    html = render(report)
    assert '<h2 id="health">Output health</h2>' in html and 'href="#health"' in html
    block = html[html.index('<table class="health">') : html.index("</table>", html.index('<table class="health">'))]
    rows = re.findall(r"<tr class=\"([^\"]*)\">(.*?)</tr>", block, re.S)
    sft_mt = next(row for classes, row in rows if ">sft" in row and "100.0%" in row)
    assert [(classes, row) for classes, row in rows if row == sft_mt][0][0].strip() == "degenerate"
    base_mt = next(row for _, row in rows if "bo_zh_mt" in row)  # the task's first row is the base
    assert ">base" in base_mt and re.findall(r"<td>([^<]*)</td>", base_mt)[:3] == [str(N), "100.0%", "0.0%"]
    # The headline section of the task has an output-health column beside the scores.
    section = html[html.index('data-task="bo_zh_mt"') :]
    section = section[: section.index("</table>")]
    assert (
        "<th title=\"share of this model's bo_zh_mt outputs" in section
        and "mostly empty or repetitive</span>" in section
    )


def test_markdown_health_and_the_marked_gain(issue):
    _, report = issue
    text, _ = render_markdown(report, "plots")
    assert "## Output health" in text
    health = text[text.index("## Output health") : text.index("## Headline table")]
    sft_row = next(line for line in health.splitlines() if line.startswith(f"| `{TASK}` | sft"))
    assert sft_row.endswith("| **⚠ 100.0%** |") and "100.0%" in sft_row
    every = text[text.index("### Tibetan → Chinese translation (`bo_zh_mt`)\n\n| Comparison") :]
    line = next(line for line in every.splitlines() if line.startswith("| sft − base | Similarity"))
    assert "⚠" in line and "**" not in line and "↑" not in line
    headline = text[text.index("### Task: Tibetan → Chinese translation") :]
    assert "Output health |" in headline.splitlines()[2]


def test_item_browser_shows_the_flags(issue):
    _, report = issue
    mt = next(t for t in report.items if t.task == TASK)
    base, sft = (mt.columns.index(next(r for r in mt.columns if r.name == name)) for name in ("base", "sft"))
    first = mt.items[0]
    assert first.outputs[base].flags == ["empty", "off_script"] and first.outputs[sft].flags == ["repetitive"]
    html = render(report)
    assert (
        'data-flips="' in html
        and "repetitive:0" in html
        and '<option value="repetitive">repetitive output</option>' in html
    )
    assert '<span class="badge hflag degenerate">repetitive</span>' in html and "badge suspect" in html


def test_tradeoff_point_of_a_degenerate_gain_is_marked(tmp_path):
    paths = issue_study(tmp_path, record_health=True)
    report = assemble([paths["sft"], paths["rl"]], comparator=Comparator(n_resamples=100))
    plot = next(plot for plot in report.plots["tradeoff"] if plot.name == "tax_gain_bo_headline")
    assert "sft ⚠" not in plot.svg and "mostly empty" not in plot.caption
    # The headline task's gain (ROUGE-L, its y axis) made of a looped syllable against an empty base.
    _rewrite(
        paths["base"], "bo_headline", lambda row: row.update(output="", rouge_1=0.0, rouge_2=0.0, rouge_l=0.0), True
    )
    _rewrite(paths["sft"], "bo_headline", lambda row: row.update(output="བཀྲ་ཤིས་" * 10, rouge_l=30.0), True)
    report = assemble([paths["sft"], paths["rl"]], comparator=Comparator(n_resamples=100))
    plot = next(plot for plot in report.plots["tradeoff"] if plot.name == "tax_gain_bo_headline")
    assert "sft ⚠" in plot.svg and "mostly empty or repetitive" in plot.caption


def test_a_swept_strength_with_a_degenerate_gain_keeps_its_mark(tmp_path):
    """A run made by `sweep` is labelled by its strength, and the mark is kept beside it."""
    paths = issue_study(tmp_path, record_health=True)
    # As above: sft's headline gain is a looped syllable against an empty base.
    _rewrite(
        paths["base"], "bo_headline", lambda row: row.update(output="", rouge_1=0.0, rouge_2=0.0, rouge_l=0.0), True
    )
    _rewrite(paths["sft"], "bo_headline", lambda row: row.update(output="བཀྲ་ཤིས་" * 10, rouge_l=30.0), True)
    results = json.loads((paths["sft"] / "results.json").read_text(encoding="utf-8"))
    results["config"] |= {"adapter_scale": 0.5, "adapter_scaled_from": "/adapters/sft"}
    (paths["sft"] / "results.json").write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    report = assemble([paths["sft"], paths["rl"]], comparator=Comparator(n_resamples=100))
    plot = next(plot for plot in report.plots["tradeoff"] if plot.name == "tax_gain_bo_headline")
    assert "sft (s=0.5) ⚠" in plot.svg and "mostly empty or repetitive" in plot.caption


def test_truncated_rate_beside_the_metrics_is_health_not_a_metric(tmp_path):
    paths = make_study(tmp_path, n_items=12)
    for name, rate in (("base", 0.0), ("sft", 0.25)):
        results = json.loads((paths[name] / "results.json").read_text())
        results["tasks"][TASK]["truncated_rate"] = rate
        (paths[name] / "results.json").write_text(json.dumps(results))
    report = assemble([paths["sft"], paths["rl"]], comparator=Comparator(n_resamples=100))
    sft = report.runs[0]
    assert "truncated_rate" not in sft.metrics[TASK]
    assert all(d.metric != "truncated_rate" for d in report.comparisons[TASK])
    assert report.health.row(sft, TASK).rates["truncated_rate"] == 0.25 and "truncated_rate" in report.health.rates
    assert report.health.row(report.runs[1], TASK).rates.get("truncated_rate") is None
    html = render(report)
    assert "<th>truncated</th>" in html and "<td>25.0%</td>" in html
    assert "| truncated |" in render_markdown(report, "plots")[0]


def test_old_runs_and_tasks_without_text(tmp_path):
    paths = make_study(tmp_path, n_items=8)
    runs = load_runs([paths["sft"]])
    from alignment_tax.reports.health import is_derived, task_health

    # Written before health was recorded: derived from the per-item records, and said so.
    assert task_health(runs[0], "cmrc2018") == {"n": 8, "empty_rate": 0.0, "repetition_rate": 0.0}
    assert is_derived(runs[0], "cmrc2018")
    # A log-likelihood task records scores, not text: no health.
    results = json.loads((paths["sft"] / "results.json").read_text())
    results["tasks"]["cmmlu"] = {"acc": 0.5}
    results["samples"]["cmmlu"] = "samples/cmmlu.jsonl"
    (paths["sft"] / "samples" / "cmmlu.jsonl").write_text(
        json.dumps({"id": "0", "output": [[-1.0, False]], "acc": 0.5}) + "\n"
    )
    (paths["sft"] / "results.json").write_text(json.dumps(results))
    report = assemble([paths["sft"]], comparator=Comparator(n_resamples=50))
    assert "cmmlu" not in report.health.tasks and "cmrc2018" in report.health.tasks
    assert "Rates marked * are derived" in render(report)
