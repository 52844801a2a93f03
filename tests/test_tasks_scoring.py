"""Hand-checked per-item scores, corpus aggregations and the tasks' YAML settings."""

import pytest

from alignment_tax.metrics.translation import corpus_bleu
from alignment_tax.tasks import OUR_TASKS, scoring
from alignment_tax.tasks.prompts import task_config
from alignment_tax.trainers.presets import DEFAULTS

TIBETAN = "བཀྲ་ཤིས་བདེ་ལེགས།"


def test_cmrc_scores_a_partial_answer_by_hand():
    # tokens: 光 荣 和 ωforce 开 发 vs 光 荣 和 ωforce; common run 4: P = 4/6, R = 1, F1 = 0.8
    scores = scoring.process_cmrc2018({"reference": ["光荣和ω-force", "光荣"]}, ["光荣和ω-force开发"])
    assert scores == pytest.approx({"em": 0.0, "f1": 80.0, "average": 40.0})


def test_cmrc_exact_match_uses_any_reference_and_official_punctuation():
    assert scoring.process_cmrc2018({"reference": ["上海", "北京"]}, ["北京。"]) == {
        "em": 100.0,
        "f1": 100.0,
        "average": 100.0,
    }
    assert scoring.process_cmrc2018({"reference": ["北京"]}, [""]) == {"em": 0.0, "f1": 0.0, "average": 0.0}


def test_predictions_lose_outer_whitespace_and_a_leading_think_block():
    assert scoring.clean_prediction("<think>\n想一想\n</think>\n\n 北京 \n") == "北京"
    assert scoring.clean_prediction("答案 <think>x</think>") == "答案 <think>x</think>"
    assert scoring.process_cmrc2018({"reference": ["北京"]}, ["<think></think>北京"])["em"] == 100.0


def test_headline_identical_is_100_and_chinese_is_not_tibetan():
    scores = scoring.process_headline({"reference": TIBETAN}, [TIBETAN])
    assert scores == {"rouge_1": 100.0, "rouge_2": 100.0, "rouge_l": 100.0, "lang_consistency": 1.0}
    # two of the three syllables match in order: P = R = 2/3
    partial = scoring.process_headline({"reference": "ཀ་ཁ་ག"}, ["ཀ་ཁ་ང"])
    assert partial["rouge_1"] == pytest.approx(200 / 3) and partial["rouge_2"] == pytest.approx(50.0)
    assert scoring.process_headline({"reference": TIBETAN}, ["标题"])["lang_consistency"] == 0.0


def test_translation_items_and_direction_specific_corpus_aggregations():
    doc = {"reference": "我爱北京天安门", "target_lang": "zh"}
    assert scoring.process_translation(doc, ["我爱北京"]) == {
        "bleu": ("我爱北京", "我爱北京天安门"),
        "chrf": ("我爱北京", "我爱北京天安门"),
        "lang_consistency": 1.0,
    }
    tibetan_doc = {"reference": TIBETAN, "target_lang": "bo"}
    assert scoring.process_translation(tibetan_doc, ["我爱"])["lang_consistency"] == 0.0
    assert scoring.bleu_zh([("我爱北京天安门", "我爱北京天安门")]) == pytest.approx(100.0)
    assert scoring.bleu_bo([(TIBETAN, TIBETAN)]) == pytest.approx(100.0)
    assert scoring.chrf_zh([("我爱北京天安门", "我爱北京天安门")]) == pytest.approx(100.0)
    assert scoring.chrf_bo([(TIBETAN, TIBETAN)]) == pytest.approx(100.0)
    items = [("我爱北京天安门广场", "我爱北京天安门"), ("今天天气很好", "今天天气不错")]
    zh_bleu = corpus_bleu([p for p, _ in items], [r for _, r in items], "zh").score
    assert 0 < scoring.bleu_zh(items) == pytest.approx(zh_bleu)
    # The target language picks the tokenizer: unsegmented Tibetan is one "word" per sentence
    # to the zh tokenizer, so no 4-gram ever matches.
    tibetan = [("ཀ་ཁ་ག་ང་ཅ་ཆ།", "ཀ་ཁ་ག་ང་ཅ་ཇ།"), (TIBETAN, TIBETAN)]
    assert scoring.bleu_bo(tibetan) > 50 and scoring.bleu_zh(tibetan) == 0.0


@pytest.mark.parametrize("task", OUR_TASKS)
def test_yaml_declares_greedy_zero_shot_generation(task):
    config = task_config(task)
    assert config["output_type"] == "generate_until" and config["num_fewshot"] == 0
    gen = config["generation_kwargs"]
    assert gen["do_sample"] is False and gen["temperature"] == 0.0
    # the completion cap GRPO trains with: what is measured is what was trained
    assert gen["max_gen_toks"] == DEFAULTS["grpo"]["training"]["max_completion_length"] == 256
    assert config["custom_dataset"] == "!function hooks.load_docs"
    assert config["metadata"]["task_name"] == task
    assert all(m["higher_is_better"] is True for m in config["metric_list"])


def test_corpus_metrics_use_the_aggregation_for_the_target_language():
    for task, lang in (("bo_zh_mt", "zh"), ("zh_bo_mt", "bo")):
        config = task_config(task)
        assert config["metadata"]["target_lang"] == lang
        aggregations = {m["metric"]: m["aggregation"] for m in config["metric_list"]}
        assert aggregations == {
            "bleu": f"!function hooks.bleu_{lang}",
            "chrf": f"!function hooks.chrf_{lang}",
            "lang_consistency": "mean",
        }


@pytest.mark.parametrize("name", ["scoring", "prompts", "loading", "registry"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"alignment_tax.tasks.{name}"))
    assert result.failed == 0 and result.attempted > 0  # a module without examples would pass unseen
