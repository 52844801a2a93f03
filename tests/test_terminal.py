"""The summary commands print by default: the headline numbers results.json holds, where the files are."""

from __future__ import annotations

import json

from alignment_tax.terminal import emit, experiment_lines, judge_lines, report_lines, scores_line, series_lines

TASKS = {
    "cmrc2018": {"em": 56.25, "f1": 67.0875, "average": 61.66875, "average_stderr": 0.5, "f1_stderr": 0.75},
    "bo_zh_mt": {"bleu": 15.8, "chrf": 15.53},
}
TAX = {"cmrc2018": {"em": -2.0, "f1": -1.25, "average": -1.625}}
DRIFT = {"kl": {"mean": 0.01751, "p50": 0.008}, "delta_nll": {"mean": 0.0123}}


def test_the_scores_line_holds_the_headline_metric_its_interval_and_change_and_the_drift():
    line = scores_line(TASKS, TAX, DRIFT)
    # The report's headline metrics (CMRC Avg, BLEU); 61.66875 ± 1.96 × 0.5 = 60.69 to 62.65.
    assert line == (
        "cmrc2018 average 61.7 (95% CI 60.7 to 62.6), vs base -1.62; bo_zh_mt bleu 15.8; "
        "drift: mean KL 0.0175, mean Δ NLL +0.0123 nats/token"
    )
    assert scores_line({}, None, None) == "no scores"
    assert scores_line({"cmmlu": {"acc_stderr": 0.01, "acc": 0.41}}, None, {"kl": {"mean": 0.5}}) == (
        "cmmlu acc 0.41 (95% CI 0.39 to 0.43); drift: mean KL 0.5 nats/token"
    )


def test_json_is_printed_only_when_asked(capsys):
    emit({"a": 1}, True, ["a person's line"])
    assert json.loads(capsys.readouterr().out) == {"a": 1}
    emit({"a": 1}, False, ["a person's line"])
    assert capsys.readouterr().out == "a person's line\n"


def test_a_series_and_an_experiment_say_each_run_and_where_it_is(tmp_path):
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "results.json").write_text(json.dumps({"tasks": TASKS, "tax": TAX}), encoding="utf-8")
    lines = series_lines({"scale_1": {"tasks": TASKS, "tax": TAX, "results": "out/scale_1/results.json"}})
    assert lines == [
        "  scale_1: cmrc2018 average 61.7 (95% CI 60.7 to 62.6), vs base -1.62; bo_zh_mt bleu 15.8 (out/scale_1/results.json)"
    ]
    summary = {
        "output": "runs/demo",
        "stages": {"sft": "k"},
        "evaluations": {"sft": str(tmp_path / "sft"), "gone": str(tmp_path / "gone")},
        "judgements": [],
        "reports": ["runs/demo/report.html"],
    }
    printed = experiment_lines(summary)
    assert printed[0] == "ran runs/demo: 1 stages, 2 evaluations, 0 judgements"
    assert printed[1].startswith("  sft: cmrc2018 average 61.7") and printed[2] == f"  gone: {tmp_path / 'gone'}"
    assert printed[-1] == "reports: runs/demo/report.html"


def test_a_judgement_says_the_record_the_rate_with_its_interval_and_the_next_command():
    summary = {
        "task": "bo_headline",
        "run_a": "runs/eval/rl",
        "run_b": "runs/eval/sft",
        "n_pairs": 40,
        "wins": 22,
        "ties": 6,
        "losses": 10,
        "n_invalid": 2,
        "n_pending": 0,
        "win_rate": 0.6315789,
        "win_rate_ci": [0.4868, 0.7763],
        "p_value": 0.0500953,
        "records": "runs/judge/rl_vs_sft.pairs.jsonl",
    }
    assert judge_lines(summary, "runs/judge/rl_vs_sft.json") == [
        "judged bo_headline: rl (A) against sft (B) on 40 pairs: 22 A wins, 6 ties, 10 B wins, 2 invalid; "
        "A's win rate 63.2% (95% CI 48.7% to 77.6%), sign test p = 0.0501",
        "  written to runs/judge/rl_vs_sft.json (each pair's verdicts in runs/judge/rl_vs_sft.pairs.jsonl)",
        "next: alignment-tax report runs/eval/rl runs/eval/sft --judge runs/judge/rl_vs_sft.json --out report",
    ]
    unrated = summary | {"win_rate": None, "win_rate_ci": None, "n_pending": 3}
    assert judge_lines(unrated, "j.json")[0].endswith("10 B wins, 2 invalid")
    assert judge_lines(unrated, "j.json")[2] == "  3 pairs pending: rerun to continue"


def test_a_report_says_what_it_holds_and_what_it_could_not_compare():
    summary = {
        "report": "r.md",
        "format": "markdown",
        "plots": ["r_files/judge.svg", "r_files/tax_gain_bo_zh_mt.svg"],
        "runs": ["sft", "rl"],
        "baseline": "sft",
        "tasks": ["cmrc2018", "bo_zh_mt"],
        "judgements": 0,
        "not_compared": ["bo_zh_mt: rl vs sft not compared: scored on different items"],
    }
    assert report_lines(summary) == [
        "wrote r.md (markdown): 2 runs (sft, rl), baseline sft, tasks cmrc2018, bo_zh_mt",
        "  plots: 2 SVG files in r_files",
        "  not compared: bo_zh_mt: rl vs sft not compared: scored on different items",
    ]
