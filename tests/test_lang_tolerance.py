"""The language-consistency tolerance: strict by default, the same rule in metric, tasks, score and reward."""

from __future__ import annotations

import json

import pytest

from alignment_tax.cli import main
from alignment_tax.errors import UserError
from alignment_tax.metrics.scripts import STRICT, Tolerance, is_script_consistent, parse_tolerance
from alignment_tax.rewards import build_reward
from alignment_tax.tasks import scoring

GDP = "海洋经济总产值占全省GDP的比重上升到8%。"  # a gold CMiLBench reference the strict rule fails


@pytest.mark.parametrize(
    "text, language, tolerance, expected",
    [
        (GDP, "zh", STRICT, 0.0),
        (GDP, "zh", Tolerance(acronyms=3), 1.0),
        (GDP, "zh", Tolerance(acronyms=2), 0.0),  # GDP is 3 letters
        ("中国Gdp增长", "zh", Tolerance(acronyms=5), 0.0),  # not capitals
        ("GDP", "zh", Tolerance(acronyms=5), 0.0),  # no Chinese at all
        ("བོད་ཡིག་OL", "bo", Tolerance(acronyms=2), 1.0),
        # 6 Han letters and 2 Latin: a share of 2/8 = 0.25
        ("纳摩协热格ra维", "zh", Tolerance(other_share=0.25), 1.0),
        ("纳摩协热格ra维", "zh", Tolerance(other_share=0.2), 0.0),
        ("", "zh", Tolerance(acronyms=5, other_share=0.5), 0.0),
    ],
)
def test_tolerance_cases(text, language, tolerance, expected):
    assert is_script_consistent(text, language, tolerance) == expected


def test_strict_is_the_default_and_parses_back():
    assert parse_tolerance(None) is STRICT and parse_tolerance("") is STRICT
    tolerance = parse_tolerance("acronyms=5, other_share=0.02")
    assert tolerance == Tolerance(5, 0.02) and parse_tolerance(str(tolerance)) == tolerance
    assert parse_tolerance({"acronyms": 4}) == Tolerance(4, 0.0)
    for bad in ("acronyms", "acronyms=x", "share=0.1", "other_share=1.5", {"latin": 1}):
        with pytest.raises(UserError):
            parse_tolerance(bad)


def test_gold_references_the_strict_rule_fails(shared_data):
    from alignment_tax.data.normalize import normalize_text

    rows = [json.loads(line) for line in (shared_data / "bo_zh_mt" / "cmilbench_bo_zh.jsonl").read_text().splitlines()]
    references = [normalize_text(row["zh"]) for row in rows]
    strict = sum(is_script_consistent(r, "zh") == 0.0 for r in references)
    tolerant = sum(is_script_consistent(r, "zh", Tolerance(acronyms=5)) == 0.0 for r in references)
    assert (strict, tolerant) == (1, 0)  # 1 of 450 (0.2%): the GDP sentence above


def test_task_scoring_reads_the_tolerance_from_the_doc():
    doc = {"reference": GDP, "target_lang": "zh"}
    assert scoring.process_translation(doc, [GDP])["lang_consistency"] == 0.0
    relaxed = {**doc, "lang_tolerance": "acronyms=5,other_share=0"}
    assert scoring.process_translation(relaxed, [GDP])["lang_consistency"] == 1.0
    assert (
        scoring.process_headline({"reference": "བོད་OL", "lang_tolerance": "acronyms=2"}, ["བོད་OL"])["lang_consistency"]
        == 1.0
    )


def test_docs_carry_the_tolerance_only_when_set():
    from alignment_tax.data import samples
    from alignment_tax.tasks.loading import load_task_docs

    data = {"data": samples.evaluation_data()}
    assert "lang_tolerance" not in load_task_docs("bo_zh_mt", data)[0]
    docs = load_task_docs("bo_zh_mt", {**data, "lang_tolerance": "acronyms=5,other_share=0"})
    assert {doc["lang_tolerance"] for doc in docs} == {"acronyms=5,other_share=0"}


def test_reward_and_metric_agree():
    reward = build_reward({"language": 1.0}, language="zh", language_tolerance="acronyms=5")
    component = reward.component("language")
    assert component(completions=[GDP, "GDP", "中文"]) == [1.0, 0.0, 1.0]
    assert "acronyms=5" in repr(component)
    strict = build_reward({"language": 1.0}, language="zh").component("language")
    assert strict(completions=[GDP]) == [0.0] and repr(strict) == "LanguageConsistencyReward('zh')"


def test_score_cli_and_config(tmp_path, capsys):
    from alignment_tax.trainers import load_config

    rows = tmp_path / "p.jsonl"
    rows.write_text(json.dumps({"prediction": GDP, "reference": GDP}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["score", "mt", "--predictions", str(rows)]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["lang_consistency"] == 0.0
    assert main(["score", "mt", "--predictions", str(rows), "--lang-tolerance", "acronyms=5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["lang_consistency"] == 1.0 and result["lang_tolerance"] == "acronyms=5,other_share=0"
    assert main(["score", "mt", "--predictions", str(rows), "--lang-tolerance", "latin=1"]) == 2
    assert load_config("grpo", overrides=["reward.language_tolerance=acronyms=5"])["reward"]["language_tolerance"]
    with pytest.raises(UserError):
        load_config("grpo", overrides=["reward.language_tolerance=acronyms=x"])


def test_evaluate_checks_and_spells_the_tolerance_once():
    from alignment_tax.evaluation.checks import check_evaluate_values
    from alignment_tax.metrics.scripts import canonical_tolerance

    with pytest.raises(UserError, match="--lang-tolerance"):
        check_evaluate_values({"lang_tolerance": "latin=1"})
    with pytest.raises(UserError, match="evaluate.options.lang_tolerance"):
        check_evaluate_values({"lang_tolerance": "acronyms=x"}, lambda key: f"evaluate.options.{key}")
    # the CLI's and a spec's spellings of one tolerance become one string (one base key)
    assert (
        canonical_tolerance("acronyms=5")
        == canonical_tolerance({"acronyms": 5, "other_share": 0})
        == "acronyms=5,other_share=0"
    )
    assert canonical_tolerance("acronyms=0") is None and canonical_tolerance(None) is None


def test_the_tolerance_reaches_the_docs_through_lm_eval():
    """evaluate's task metadata carries the tolerance to the custom_dataset hook, as lm-eval loads the task."""
    from alignment_tax.data import samples
    from alignment_tax.tasks.registry import resolve_tasks

    manager, names = resolve_tasks(
        ["bo_zh_mt"], {"data": samples.evaluation_data(), "lang_tolerance": "acronyms=5,other_share=0"}
    )
    task = dict(manager.load(list(names))["tasks"])["bo_zh_mt"]
    assert {doc["lang_tolerance"] for doc in task.test_docs()} == {"acronyms=5,other_share=0"}
