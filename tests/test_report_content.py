"""What the report computes: the headline table, intervals and tests, flags, drift, judge, items, plots."""

from __future__ import annotations

import json
import re
import shutil
import xml.dom.minidom

import numpy as np
import pytest
from scipy.stats import binomtest
from test_report_helpers import make_study

from alignment_tax.errors import UserError
from alignment_tax.metrics.stats import paired_bootstrap
from alignment_tax.metrics.translation import corpus_bleu
from alignment_tax.reports import plots
from alignment_tax.reports.comparisons import TARGET_LANGUAGE, Comparator
from alignment_tax.reports.content import assemble, default_baseline
from alignment_tax.reports.items import task_items
from alignment_tax.reports.runs import load_runs
from alignment_tax.reports.textsafe import markdown_text, visible

N = 40


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"), n_items=N)


@pytest.fixture(scope="module")
def report(study):
    return assemble([study["sft"], study["rl"]], judge_files=[study["judge"]])


def results(path):
    return json.loads((path / "results.json").read_text(encoding="utf-8"))


def samples(path, task):
    return [json.loads(line) for line in (path / "samples" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_target_languages_match_the_scorer():
    from alignment_tax.evaluation.task_results import TARGET_LANGUAGE as SCORED

    assert TARGET_LANGUAGE == SCORED == {"bo_zh_mt": "zh", "zh_bo_mt": "bo", "bo_headline": "bo"}
    # one table, read from the task YAMLs' metadata.target_lang
    from alignment_tax.tasks.prompts import task_metadata

    assert all(task_metadata(task)["target_lang"] == language for task, language in TARGET_LANGUAGE.items())


def test_headline_table_has_the_reference_studys_shape(report, study):
    mt, headline = report.sections
    assert (mt.task, headline.task) == ("bo_zh_mt", "bo_headline")
    assert [c.label for c in mt.columns] == ["BLEU", "Similarity", "CMRC Avg", "CMRC F1"]
    assert [c.label for c in headline.columns] == ["ROUGE-L", "Similarity", "CMRC Avg", "CMRC F1", "LLM-Judge Win (%)"]
    assert [(r.label, r.role) for r in mt.rows] == [
        ("base", "base"),
        ("sft (baseline)", "baseline"),
        ("rl", "run"),
        ("Gap (rl vs sft)", "gap"),
    ]
    sft, rl = results(study["sft"]), results(study["rl"])
    base = results(study["base"])
    base_row, sft_row, rl_row, gap = mt.rows
    assert sft_row.cells[0].value == sft["tasks"]["bo_zh_mt"]["bleu"]
    assert rl_row.cells[2].value == rl["tasks"]["cmrc2018"]["average"]
    assert base_row.cells[3].value == base["tasks"]["cmrc2018"]["f1"] and base_row.cells[3].diff is None
    # Δ against the base in each run's cell; the gap row is run − baseline, with its interval.
    delta = rl_row.cells[0].diff
    assert delta.b.is_base and delta.difference == pytest.approx(
        rl["tasks"]["bo_zh_mt"]["bleu"] - base["tasks"]["bo_zh_mt"]["bleu"]
    )
    bleu_gap = gap.cells[0].diff
    assert bleu_gap.a.name == "rl" and bleu_gap.b.name == "sft"
    assert bleu_gap.difference == pytest.approx(rl["tasks"]["bo_zh_mt"]["bleu"] - sft["tasks"]["bo_zh_mt"]["bleu"])
    assert bleu_gap.ci[0] <= bleu_gap.difference <= bleu_gap.ci[1] and bleu_gap.significant  # SFT's big MT gain
    cmrc_gap = gap.cells[2].diff
    assert cmrc_gap.difference == pytest.approx(
        rl["tasks"]["cmrc2018"]["average"] - sft["tasks"]["cmrc2018"]["average"]
    )


def test_judge_column_and_its_gap(report):
    headline = report.sections[1]
    sft_row, rl_row, gap = headline.rows[1], headline.rows[2], headline.rows[3]
    judge = report.judgements[0]
    assert (judge.a.name, judge.b.name, judge.task) == ("rl", "sft", "bo_headline")
    assert rl_row.cells[-1].judge[0].pct == pytest.approx(100 * 20 / N) and rl_row.cells[-1].judge[0].other == "sft"
    assert sft_row.cells[-1].judge[0].pct == pytest.approx(100 * 15 / N)
    entry = gap.cells[-1].judge[0]
    assert entry.gap == pytest.approx(100 * (20 - 15) / N)
    assert entry.ci[0] <= entry.gap <= entry.ci[1]
    assert entry.p_value == pytest.approx(binomtest(20, 35, 0.5).pvalue)


def test_mean_metric_interval_is_the_paired_bootstrap_of_the_items(study):
    runs = load_runs([study["sft"], study["rl"]])
    diff = Comparator().metric("bo_zh_mt", "similarity", runs[1], runs[0])
    rl, sft = ([row["similarity"] for row in samples(study[name], "bo_zh_mt")] for name in ("rl", "sft"))
    expected = paired_bootstrap(rl, sft, n_resamples=2000, seed=0)
    assert diff.ci == (expected["ci_low"], expected["ci_high"]) and diff.p_value == expected["p_value"] and diff.n == N
    # and, computed apart from the code: close to the normal interval mean ± 1.96·sd/√n of the differences
    differences = np.asarray(rl) - np.asarray(sft)
    half_width = 1.96 * differences.std(ddof=1) / np.sqrt(N)
    assert diff.difference == pytest.approx(differences.mean())
    assert diff.ci[0] == pytest.approx(differences.mean() - half_width, abs=0.2 * half_width)
    assert diff.ci[1] == pytest.approx(differences.mean() + half_width, abs=0.2 * half_width)


def test_corpus_bleu_is_resampled_as_a_corpus_score(study):
    runs = load_runs([study["sft"], study["rl"]])
    diff = Comparator(n_resamples=300).metric("bo_zh_mt", "bleu", runs[1], runs[0])
    rl, sft = samples(study["rl"], "bo_zh_mt"), samples(study["sft"], "bo_zh_mt")
    refs = [row["reference"] for row in rl]
    observed = (
        corpus_bleu([r["output"] for r in rl], refs, "zh").score
        - corpus_bleu([r["output"] for r in sft], refs, "zh").score
    )
    assert diff.difference == pytest.approx(observed)
    assert "corpus" in diff.method and diff.ci[0] < observed < diff.ci[1]
    # A mean of sentence BLEU would be a different number: the corpus score is what is compared.
    sentence_mean = np.mean([r["bleu"] for r in rl]) - np.mean([r["bleu"] for r in sft])
    assert abs(sentence_mean - observed) > 1e-6


def test_mcnemar_counts_the_em_flips(study):
    runs = load_runs([study["sft"]])
    diff = Comparator(n_resamples=200).metric("cmrc2018", "em", runs[0], runs[0].base)
    run, base = samples(study["sft"], "cmrc2018"), samples(study["base"], "cmrc2018")
    lost = sum(b["em"] == 100 and r["em"] == 0 for r, b in zip(run, base))
    gained = sum(b["em"] == 0 and r["em"] == 100 for r, b in zip(run, base))
    assert (diff.flips.lost, diff.flips.gained) == (lost, gained) and lost > gained
    assert diff.flips.p_value == pytest.approx(binomtest(gained, lost + gained, 0.5).pvalue)
    assert Comparator(n_resamples=200).metric("cmrc2018", "f1", runs[0], runs[0].base).flips is None


def test_runs_on_different_items_are_flagged_not_compared(study, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(study["rl"], other)
    rows = samples(other, "cmrc2018")[:-3]
    (other / "samples" / "cmrc2018.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    moved = samples(other, "bo_headline")
    moved[0]["source"] = "another article"
    (other / "samples" / "bo_headline.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in moved), encoding="utf-8"
    )
    found = assemble([study["sft"], other], comparator=Comparator(n_resamples=100))
    gap = found.sections[0].rows[-1]
    cmrc = gap.cells[2].diff
    assert (
        cmrc.flag.startswith("scored on different items (other: 37, sft: 40")
        and cmrc.ci is None
        and cmrc.difference is None
    )
    assert gap.cells[0].diff.comparable  # bo_zh_mt: the same items
    assert any(
        "bo_headline: other vs sft not compared: scored on different items (item 'tqa_0' has different inputs)" in f
        for f in found.flags
    )
    assert any(f.startswith("cmrc2018: other vs sft not compared") for f in found.flags)


def test_drift_numbers_and_intervals(report, study):
    rl = results(study["rl"])["drift"]
    row = next(r for r in report.drift_rows if r.run.name == "rl")
    assert row.delta_nll.difference == pytest.approx(rl["delta_nll"]["mean"])
    assert row.kl.difference == pytest.approx(rl["kl"]["mean"]) and row.kl.ci[0] < row.kl.difference < row.kl.ci[1]
    kl_gap = next(d for d in report.drift_gaps if d.metric == "kl")
    assert kl_gap.difference == pytest.approx(rl["kl"]["mean"] - results(study["sft"])["drift"]["kl"]["mean"])
    assert kl_gap.n == 12 and kl_gap.significant and kl_gap.ci[1] < 0  # RL drifts less


def test_glance_shows_gain_tax_and_drift_against_the_base(report):
    labels = [label for label, _, _ in report.glance.columns]
    assert labels == [  # each with its unit
        "bo_zh_mt BLEU, 0–100",
        "bo_headline ROUGE-L, 0–100",
        "CMRC Avg, 0–100",
        "ΔNLL (drift), nats/token",
        "KL to base, nats/token",
    ]
    run, cells = report.glance.rows[0]
    assert run.name == "sft" and all(cell is not None and cell.b.is_base for cell in cells)


def test_item_browser_flips_and_cap(report, study):
    cmrc = next(t for t in report.items if t.task == "cmrc2018")
    assert cmrc.flip_metric == "em" and cmrc.binary and [r.name for r in cmrc.columns] == ["base", "sft", "rl"]
    run, base = samples(study["sft"], "cmrc2018"), samples(study["base"], "cmrc2018")
    lost = [r["id"] for r, b in zip(run, base) if b["em"] == 100 and r["em"] == 0]
    assert [item.id for item in cmrc.items if "lost" in (o.status for i, o in item.outputs.items() if i == 1)] == lost
    assert cmrc.counts["sft"]["lost"] == len(lost)
    mt = next(t for t in report.items if t.task == "bo_zh_mt")
    assert mt.flip_metric == "bleu" and not mt.binary and mt.counts["sft"].get("better", 0) > 0
    capped = task_items("cmrc2018", report.runs, [], max_items=10)
    assert len(capped.items) == 10 and capped.n_total == N and all(item.statuses for item in capped.items)
    assert "showing 10 of 40 items" in capped.notes[-1]
    judged = next(t for t in report.items if t.task == "bo_headline")
    assert judged.items[0].judge == ["rl ≻ sft"]


def test_plots_are_standalone_svg(report):
    names = [plot.name for group in report.plots.values() for plot in group]
    assert names[:7] == [
        "tax_gain_bo_zh_mt",
        "tax_gain_bo_zh_mt_drift",  # the tax on every tax measure: CMRC, then drift Δ NLL
        "tax_gain_bo_headline",
        "tax_gain_bo_headline_drift",
        "drift_kl_cdf",
        "drift_nll_cdf",
        "judge",
    ]
    assert "train_loss" in names and "train_reward" in names and "train_drift_kl_mean" in names
    for group in report.plots.values():
        for plot in group:
            assert plot.svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and plot.svg.endswith("</svg>")
            xml.dom.minidom.parseString(plot.svg)  # well-formed XML, as a .svg file must be
    # Inlined in one page, no two plots share an element id.
    ids = [
        found for group in report.plots.values() for plot in group for found in re.findall(r' id="([^"]+)"', plot.svg)
    ]
    assert len(ids) == len(set(ids))


def test_pareto_front():
    points = [(0, 0), (-18, 50), (-11, 16), (-20, 10), (2, -1)]
    assert plots.pareto_front(points) == [1, 2, 0, 4]
    assert plots.pareto_front([(1, 1), (1, 1)]) == [0, 1]


def test_baseline_choice(study):
    report = assemble([study["sft"], study["rl"]], baseline="rl", comparator=Comparator(n_resamples=50))
    assert report.baseline.name == "rl" and report.sections[0].rows[-1].label == "Gap (sft vs rl)"
    with pytest.raises(UserError, match=r"--baseline 'nope' matches no run; the runs are: sft, rl"):
        assemble([study["sft"], study["rl"]], baseline="nope")


def test_text_is_made_visible_and_markdown_literal():
    assert visible("a\x00b\x1b\x7f\x85\ud800") == "a␀b␛␡\\x85\ufffd"
    assert visible("tab\tand\nnewline") == "tab\tand\nnewline"
    # Only what Markdown would read as markup is escaped, by a backslash: no entities, so the file reads as text.
    cell = markdown_text("<b>x</b> | *y* [z](http://e) `c`\nnext")
    assert cell == r"\<b>x\</b> \| \*y\* \[z\](http://e) \`c\`<br>next"
    assert markdown_text("snake_case __init__ AT&amp;T & 1 < 2 > 0") == r"snake_case \_\_init\_\_ AT\&amp;T & 1 < 2 > 0"
    assert markdown_text("# not a heading") == r"\# not a heading" and markdown_text(r"C:\dir\*") == r"C:\dir\\\*"
    assert "&#" not in markdown_text("a_b <i> & ` | * _x_ $y$ ~z~ [w]")
    assert markdown_text("x" * 50, limit=10) == "x" * 9 + "… (50 characters in all)"


def _add_task(folder, task, values):
    """Give a run an lm-eval built-in task (per-item `acc`, as lm-eval logs it) with these item values."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    results["tasks"][task] = {"acc": float(np.mean(values)), "acc_stderr": 0.01}
    results["samples"][task] = f"samples/{task}.jsonl"
    rows = [
        {
            "id": str(i),
            "source": {"question": f"q{i}", "choices": ["A", "B"]},
            "input": f"q{i}",
            "output": [[-1.0, False]],
            "reference": 0,
            "acc": value,
        }
        for i, value in enumerate(values)
    ]
    (folder / "samples" / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")


def test_builtin_tax_task_and_a_run_without_base(tmp_path):
    paths = make_study(tmp_path, n_items=12)
    rng = np.random.default_rng(0)
    for name, right in (("base", 0.7), ("sft", 0.4), ("rl", 0.65)):
        _add_task(paths[name], "cmmlu", (rng.random(30) < right).astype(float).tolist())
    report = assemble([paths["sft"], paths["rl"]], comparator=Comparator(n_resamples=100))
    assert [c.label for c in report.sections[0].columns] == ["BLEU", "Similarity", "CMRC Avg", "CMRC F1", "cmmlu Acc"]
    cell = report.sections[0].rows[1].cells[-1]
    assert cell.diff.flips is not None and cell.diff.comparable  # accuracy is right/wrong: McNemar
    assert next(t for t in report.items if t.task == "cmmlu").flip_metric == "acc"
    # Without --base: no base row, no Δ, no tax-gain plot; the gap rows remain.
    results = json.loads((paths["rl"] / "results.json").read_text())
    results["base"] = None
    (paths["rl"] / "results.json").write_text(json.dumps(results))
    alone = assemble([paths["rl"]], comparator=Comparator(n_resamples=50))
    assert [row.role for row in alone.sections[0].rows] == ["run"] and alone.sections[0].rows[0].cells[0].diff is None
    assert alone.plots["tradeoff"] == [] and all(cell is None for cell in alone.glance.rows[0][1][:3])
    from alignment_tax.reports.html_report import render
    from alignment_tax.reports.markdown_report import render as render_markdown

    assert "Alignment tax report" in render(alone) and render_markdown(alone, "x_files")[0].startswith(
        "# Alignment tax report"
    )


def test_minimum_detectable_effect_uses_the_item_count_and_skips_zero_width_intervals():
    from alignment_tax.metrics.stats import minimum_detectable_effect
    from alignment_tax.reports.comparisons import Difference
    from alignment_tax.reports.formatting import difference_text

    def filled(low, high):
        diff = Difference("bo_zh_mt", "similarity", None, None, 0.5, 0.5, n=16)
        result = {"difference": 0.0, "ci_low": low, "ci_high": high, "p_value": 1.0}
        return Comparator._fill(diff, result, "paired bootstrap over items (mean)")

    wide = filled(-0.1, 0.1)
    assert wide.mde == minimum_detectable_effect(-0.1, 0.1, n=16)  # t-based at 16 items, not z
    assert difference_text(wide).endswith(f"(would detect ≥ {wide.mde:.4f})")
    # Every resample agreed (e.g. identical outputs): no "would detect ≥ 0.00".
    flat = filled(0.0, 0.0)
    assert flat.mde is None and "would detect" not in difference_text(flat)


def test_the_default_baseline_is_never_a_control(tmp_path):
    # The positive control is built to do damage: a gap row against it shows every run as a gain.
    study = make_study(tmp_path)
    runs = [study["sft"], study["rl"]]
    assert assemble(runs, controls={"positive": "sft"}).baseline.name == "rl"
    assert assemble(runs, controls={"negative": ["sft"]}).baseline.name == "rl"
    assert assemble(runs).baseline.name == "sft"  # no controls: the first run
    # The base, given as a run, is the baseline whatever the order.
    with_base = assemble([study["sft"], study["rl"], study["base"]], controls={"positive": "sft"})
    assert with_base.baseline.path.resolve() == study["base"].resolve()
    assert assemble(runs, baseline="sft", controls={"positive": "sft"}).baseline.name == "sft"  # asked for


def test_a_control_named_by_another_spelling_of_its_path_is_not_the_default_baseline(tmp_path, monkeypatch):
    # The check finds a control the way --baseline finds a run (find_run: the path resolved), so a
    # trailing slash from shell completion, "./" or an absolute path must keep it out of the baseline too.
    study = make_study(tmp_path, n_items=8)
    monkeypatch.chdir(tmp_path)
    runs = load_runs(["runs/sft", "runs/rl"])
    for name in ("runs/sft/", "./runs/sft", str(study["sft"].resolve())):
        assert default_baseline(runs, {"positive": name}).name == "rl", name
        assert default_baseline(runs, {"negative": [name]}).name == "rl", name


def test_markdown_cells_are_short_and_the_detectable_size_has_its_column(report):
    from alignment_tax.reports.markdown_report import render

    text = render(report, "plots")[0]
    headline = text.split("## Headline")[1].split("\n## ")[0]
    assert "would detect" not in headline  # a headline cell is a value, its Δ and its interval
    cells = [cell for line in headline.splitlines() if line.startswith("|") for cell in line.split("|")]
    assert max(len(cell) for cell in cells) < 80
    differences = text.split("## Every difference")[1].split("\n## ")[0]
    assert "| would detect ≥ |" in differences and "(would detect" not in differences


def test_a_diverged_training_log_is_said_as_drawn(tmp_path):
    # NaN and infinite steps are not drawn: a run left with two finite steps is drawn as points, and says so.
    paths = make_study(tmp_path, n_items=12)
    log = tmp_path / "train" / "sft" / "train_log.jsonl"
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    for row in rows[2:]:
        row["loss"] = float("nan") if row["step"] % 2 else float("inf")
    log.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    found = assemble([paths["sft"], paths["rl"]])
    (loss,) = [plot for plot in found.plots["training"] if plot.title == "loss"]
    assert "Drawn as points, too few logged steps for a curve: sft." in loss.caption
    assert "Steps logged as NaN or infinite are not drawn: sft." in loss.caption
    assert "rl" not in loss.caption
