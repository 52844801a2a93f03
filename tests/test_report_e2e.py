"""The report on real `alignment-tax evaluate` output (a tiny model and adapter over the real data).

One real run with its base is evaluated; a copy of it is the second run (the same items and
outputs, so every gap is exactly 0 with a [0, 0] interval). The report's numbers must be the
ones evaluate wrote: scores, the tax (candidate − base) and drift.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alignment_tax.cli import main
from alignment_tax.reports.build import build_report
from alignment_tax.reports.comparisons import Comparator
from alignment_tax.reports.content import assemble

TASKS = "cmrc2018,bo_zh_mt,drift"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, shared_data, tiny_lm_dir, tiny_adapter_dir, tiny_embedder_dir):
    root = tmp_path_factory.mktemp("real") / "runs"
    first = root / "first"
    args = [
        "evaluate",
        "--model",
        tiny_lm_dir,
        "--adapter",
        tiny_adapter_dir,
        "--base",
        "--tasks",
        TASKS,
        "--limit",
        "3",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--data-dir",
        shared_data,
        "--embedder",
        tiny_embedder_dir,
        "--output",
        first,
    ]
    assert main([str(arg) for arg in args]) == 0
    second = root / "second"
    shutil.copytree(first, second)
    return first, second


def test_report_numbers_are_evaluates(real_runs):
    first, _ = real_runs
    results = json.loads((first / "results.json").read_text(encoding="utf-8"))
    report = assemble([first], comparator=Comparator(n_resamples=200))
    run = report.runs[0]
    assert (
        run.base is not None and run.base.path.resolve() == (first.parent / "_base" / results["base"]["key"]).resolve()
    )
    for task, metrics in results["tax"].items():
        for metric, tax in metrics.items():
            diff = Comparator(n_resamples=50).metric(task, metric, run, run.base)
            assert diff.difference == pytest.approx(tax, abs=1e-9), (task, metric)
            assert diff.comparable and diff.n == 3
    mt = next(section for section in report.sections if section.task == "bo_zh_mt")
    assert mt.rows[1].cells[0].value == results["tasks"]["bo_zh_mt"]["bleu"]
    # Output health as evaluate recorded it, for the run and its base; drift has none.
    for who in (run, run.base):
        recorded = json.loads(who.results_file.read_text(encoding="utf-8"))["health"]
        assert {task: report.health.row(who, task).rates for task in report.health.tasks} == recorded
    assert set(report.health.tasks) == {"cmrc2018", "bo_zh_mt"} and not report.health.derived
    row = report.drift_rows[0]
    assert row.delta_nll.difference == pytest.approx(results["drift"]["delta_nll"]["mean"])
    assert row.kl.difference == pytest.approx(results["drift"]["kl"]["mean"])


def test_identical_runs_have_zero_gaps(real_runs):
    report = assemble(list(real_runs), comparator=Comparator(n_resamples=100))
    assert report.flags == []
    for section in report.sections:
        for cell in section.rows[-1].cells:
            assert cell.diff.difference == 0 and cell.diff.ci == (0.0, 0.0)
    assert all(d.difference == 0 for d in report.drift_gaps)


def test_html_and_markdown_from_real_runs(real_runs, tmp_path):
    html = build_report(list(real_runs), out=tmp_path / "report.html")
    assert html["runs"] == ["first", "second"] and html["not_compared"] == []
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in text and "\x04" not in text  # the tiny model's control bytes are shown as symbols
    assert '<h2 id="health">Output health</h2>' in text
    # evaluate recorded what the models are, so the report says so: a tiny random base, an adapter with no training record.
    first = json.loads((real_runs[0] / "results.json").read_text(encoding="utf-8"))
    base = json.loads(
        (real_runs[0].parent / "_base" / first["base"]["key"] / "results.json").read_text(encoding="utf-8")
    )
    for recorded in (first, base):
        assert (
            recorded["weights"]["model"]["parameters"] == recorded["weights"]["model"]["tiny"]["parameters"] == 330112
        )
        assert "pretrained" not in recorded["weights"]["model"]["tiny"] and recorded["weights"]["adapter"] is None
    name = Path(first["model"]).name
    assert (
        f"These models are tiny: base <code>{name}</code> has 0.33M parameters and random weights. "
        "Their numbers show the pipeline working, not the methods&#39; merit."
    ) in text
    markdown = build_report(list(real_runs), out=tmp_path / "report.md", baseline="second")
    assert markdown["baseline"] == "second" and len(markdown["plots"]) == 4  # tax-gain on CMRC and on drift, two CDFs


def test_real_report_in_a_browser(real_runs, tmp_path):
    from test_report_browser import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    import subprocess

    from test_report_browser import FLAGS

    build_report(list(real_runs), out=tmp_path / "report.html")
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            (tmp_path / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Alignment tax report" in result.stdout and 'id="item-count">3 of 3 items shown<' in result.stdout
