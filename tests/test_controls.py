"""Controls end to end: a zero adapter reads exactly zero, a known change is detected, and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from alignment_tax.errors import UserError
from alignment_tax.experiments.runner import run_experiment
from alignment_tax.experiments.spec import load_spec
from alignment_tax.reports.comparisons import Comparator
from alignment_tax.reports.content import assemble
from alignment_tax.reports.controls import check_controls
from alignment_tax.reports.runs import load_runs

SPEC = {
    "models": {
        # The pretrained base: a random one is near-uniform everywhere, so no adapter moves its NLL.
        "base": {"tiny": {"kind": "lm", "size": "mini", "pretrained": True}},
        "zero": {"tiny": {"kind": "adapter", "base": "base", "zero": True}},
        "noisy": {"tiny": {"kind": "adapter", "base": "base", "seed": 1}},  # random A and B: a real change
    },
    "evaluate": {
        "runs": ["zero", "noisy"],
        "tasks": ["cmrc2018", "bo_zh_mt", "drift"],
        "options": {"samples": True, "limit": 6, "max_gen_toks": {"cmrc2018": 8, "bo_zh_mt": 8}},
    },
    "report": {"baseline": "zero", "formats": ["html", "md"], "controls": {"negative": "zero", "positive": "noisy"}},
}


@pytest.fixture(scope="module")
def controlled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("controls")
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    return run_experiment(load_spec(path, output=str(folder / "out")))


def test_a_zero_adapter_reads_exactly_zero_everywhere(controlled):
    results = json.loads((Path(controlled["evaluations"]["zero"]) / "results.json").read_text(encoding="utf-8"))
    assert results["adapter"].endswith("adapter")
    assert all(value == 0.0 for metrics in results["tax"].values() for value in metrics.values())
    assert results["drift"]["kl"]["mean"] == 0.0 and results["drift"]["delta_nll"]["mean"] == 0.0
    runs = load_runs([controlled["evaluations"]["zero"], controlled["evaluations"]["noisy"]])
    negative, positive = check_controls({"negative": "zero", "positive": "noisy"}, runs, Comparator())
    assert negative.passed, negative.evidence
    assert "all 6 tax values are exactly 0" in negative.evidence[0]
    assert any(line.startswith("cmrc2018: 6/6 outputs identical") for line in negative.evidence)
    assert positive.passed, positive.evidence
    assert positive.interval.ci[0] > 0


def test_the_controls_change_roles_and_fail_honestly(controlled):
    runs = load_runs([controlled["evaluations"]["zero"], controlled["evaluations"]["noisy"]])
    negative, positive = check_controls({"negative": "noisy", "positive": "zero"}, runs, Comparator())
    assert not negative.passed and any("tax not zero" in line for line in negative.evidence)
    assert any("outputs differ from the base's" in line for line in negative.evidence)
    assert not positive.passed and "not detected" in positive.evidence[0]
    with pytest.raises(UserError, match="unknown control role"):
        check_controls({"neutral": "zero"}, runs, Comparator())


def test_the_report_states_each_control(controlled):
    report = assemble(
        [controlled["evaluations"]["zero"], controlled["evaluations"]["noisy"]],
        controls={"negative": "zero", "positive": "noisy"},
    )
    assert [(check.role, check.run.name, check.verdict) for check in report.controls] == [
        ("negative", "zero", "passed"),
        ("positive", "noisy", "passed"),
    ]
    html = Path(controlled["reports"][0]).read_text(encoding="utf-8")
    markdown = Path(controlled["reports"][1]).read_text(encoding="utf-8")
    for text in (html, markdown):
        assert "Controls" in text and "negative control" in text and "positive control" in text
        assert "passed" in text and "exactly 0" in text
        assert "forgetting of memorised text" in text  # the banner: the base saw the measured passages


def test_a_spec_names_only_evaluated_runs_as_controls(tmp_path):
    spec = {**SPEC, "report": {"controls": {"negative": "base"}}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(UserError, match=r"report.controls.negative: 'base' is not a defined evaluated run"):
        load_spec(path)
    spec = {**SPEC, "report": {"controls": {"neutral": "zero"}}}
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(UserError, match="report.controls: unknown key"):
        load_spec(path)
    spec = {**SPEC, "models": {**SPEC["models"], "zero": {"tiny": {"kind": "adapter", "zero": True}}}}
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(UserError, match="models.zero.tiny.base: name the model"):
        load_spec(path)


def test_report_checks_controls_named_on_the_command_line(controlled, tmp_path):
    import subprocess
    import sys

    runs = [controlled["evaluations"]["zero"], controlled["evaluations"]["noisy"]]
    out = tmp_path / "report.md"
    cli = [sys.executable, "-m", "alignment_tax", "report", *runs, "--out", str(out)]
    done = subprocess.run(
        cli + ["--control", "negative=zero", "--control", "positive=noisy"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "| negative control | zero | **passed** |" in text and "| positive control | noisy | **passed** |" in text
    bad = subprocess.run(cli + ["--control", "neutral=zero"], capture_output=True, text=True)
    assert bad.returncode != 0 and "expected ROLE=RUN with ROLE negative or positive" in bad.stderr
    assert "Traceback" not in bad.stderr
