"""The summary commands print by default: the headline numbers results.json holds, where the files are."""

from __future__ import annotations

import json

from alignment_tax.terminal import emit, experiment_lines, scores_line, series_lines

TASKS = {
    "cmrc2018": {"em": 56.25, "f1": 67.0875, "em_stderr": 0.5, "f1_stderr": 0.75},
    "bo_zh_mt": {"bleu": 15.8, "chrf": 15.53},
}
TAX = {"cmrc2018": {"em": -2.0, "f1": -1.25}}
DRIFT = {"kl": {"mean": 0.01751, "p50": 0.008}}


def test_the_scores_line_holds_the_headline_metric_its_error_and_tax_and_the_drift():
    line = scores_line(TASKS, TAX, DRIFT)
    assert line == "cmrc2018 f1 67.1 (se 0.75), tax -1.25; bo_zh_mt chrf 15.5; drift: mean KL 0.0175 nats/token"
    assert scores_line({}, None, None) == "no scores"


def test_json_is_printed_only_when_asked(capsys):
    emit({"a": 1}, True, ["a person's line"])
    assert json.loads(capsys.readouterr().out) == {"a": 1}
    emit({"a": 1}, False, ["a person's line"])
    assert capsys.readouterr().out == "a person's line\n"


def test_a_series_and_an_experiment_say_each_run_and_where_it_is(tmp_path):
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "results.json").write_text(json.dumps({"tasks": TASKS, "tax": TAX}), encoding="utf-8")
    lines = series_lines({"scale_1": {"tasks": TASKS, "tax": TAX, "results": "out/scale_1/results.json"}})
    assert lines == ["  scale_1: cmrc2018 f1 67.1 (se 0.75), tax -1.25; bo_zh_mt chrf 15.5 (out/scale_1/results.json)"]
    summary = {
        "output": "runs/demo",
        "stages": {"sft": "k"},
        "evaluations": {"sft": str(tmp_path / "sft"), "gone": str(tmp_path / "gone")},
        "judgements": [],
        "reports": ["runs/demo/report.html"],
    }
    printed = experiment_lines(summary)
    assert printed[0] == "ran runs/demo: 1 stages, 2 evaluations, 0 judgements"
    assert printed[1].startswith("  sft: cmrc2018 f1 67.1") and printed[2] == f"  gone: {tmp_path / 'gone'}"
    assert printed[-1] == "reports: runs/demo/report.html"
