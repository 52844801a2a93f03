"""Output health: the definitions (hand-checked), the gold references, and the flags in task results."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from alignment_tax.evaluation.evaluate import compute_tax
from alignment_tax.evaluation.task_results import score_other_task, score_own_task
from alignment_tax.metrics import health
from alignment_tax.metrics.health import distinct_share, is_empty, is_repetitive, loop_share, units

GOOD_ZH = "中方在北京峰会上已经宣布未来10年为其他成员国提供3万名政府奖学金名额。"
GOOD_BO = "ཀྲུང་གོའི་ཕྱོགས་ཀྱིས་པེ་ཅིན་དབུ་ཚོགས་ཐོག་མ་འོངས་ལོ་10ཡི་ནང་དུ་ཁོངས་ཞུགས་རྒྱལ་ཁབ་གཞན་དག་ལ་སྲིད་གཞུང་གི་བྱ་དགའི་སློབ་ཡོན་གྱི་སློབ་མའི་མིང་སྐལ་ཁྲི་3སྤྲོད་རྒྱུ་ཁྱབ་བསྒྲགས་བྱས་ཟིན།"

DEGENERATE = {
    "one character repeated": "哈" * 40,
    "one character, just long enough": "哈" * 8,
    "a Chinese phrase looped": "我们" * 15,
    "an English word looped": "the " * 20,
    "a Tibetan syllable looped": "བཀྲ་ཤིས་" * 10,
    "a Tibetan phrase looped": "བཀྲ་ཤིས་བདེ་ལེགས། " * 6,
    "a sentence three times": "今天天气很好，我们去公园散步。" * 3,
    "a Tibetan sentence three times": GOOD_BO * 3,
    "a long answer whose tail loops": GOOD_ZH + "的" * 36,
    "a long answer whose tail loops a phrase": GOOD_ZH + "发展经济" * 10,
    "a passage repeated between fillers": "对不起，我不知道这个问题的答案。你好！对不起，我不知道这个问题的答案。谢谢！"
    "对不起，我不知道这个问题的答案。再见！对不起，我不知道这个问题的答案。",
    "punctuation only": "。" * 20,
    "inside a think block and spaces": "<think>好</think>\n  " + "哈" * 20 + "  ",
}
VALID = {
    "a 2-character CMRC answer": "北京",
    "a one-syllable headline": "བླ་གོས།",
    "a 3-unit chant (OpenPecha)": "吽吽吽……",
    "a Tibetan chant (OpenPecha)": "ཧཱུྃ་ཧཱུྃ་ཧཱུྃ།",
    "a doubled word (CMRC answer)": "「河流河流」",
    "a partial triple (CMRC answer)": "桑巴、恰恰恰、探戈等",
    "a sentence": GOOD_ZH,
    "a Tibetan sentence": GOOD_BO,
    "a sentence twice": "今天天气很好，我们去公园散步。" * 2,
    "a short tail loop": GOOD_ZH + "发展经济" * 5,
    "a numbered list": "1、2、3、4、5、6、10、12、15、20、30和60",
}


# Lists, checked by hand: a model that loops on a list repeats one item under changing numbers.
REPEATED_LISTS = {
    "numbered lines to the cap (issue 25)": "".join(f"{i}. 宋智克\n" for i in range(1, 31)),
    "the cap cuts the last item": "".join(f"{i}. 宋智克\n" for i in range(1, 13)) + "13. 宋",
    "numbered inline": "1. 宋智克 2. 宋智克 3. 宋智克 4. 宋智克",
    "numbered with no space": "1.宋智克2.宋智克3.宋智克4.宋智克",
    "bracketed numbers": "（1）宋智克（2）宋智克（3）宋智克（4）宋智克",
    "circled numbers": "① 宋智克 ② 宋智克 ③ 宋智克 ④ 宋智克",
    "Chinese numerals": "一、宋智克\n二、宋智克\n三、宋智克\n四、宋智克",
    "第N条 with digits": "第1条：宋智克。第2条：宋智克。第3条：宋智克。",
    "第N条 with Chinese numerals": "第一条 宋智克 第二条 宋智克 第三条 宋智克 第四条 宋智克",
    "第N名": "第1名宋智克，第2名宋智克，第3名宋智克",
    "bullets": "- 宋智克\n- 宋智克\n- 宋智克\n- 宋智克",
    "a distinct start, then one item": "1. 李明\n2. 王芳\n" + "".join(f"{i}. 宋智克\n" for i in range(3, 12)),
    "an English sentence": "".join(f"{i}. The answer is Beijing.\n" for i in range(1, 6)),
    "items that start with a number": "（1）2001年12月17日 （2）2001年12月17日 （3）2001年12月17日",
    "items that start with a number after 、": "1、2013年计划\n2、2013年计划\n3、2013年计划\n4、2013年计划",
    "nothing but enumerators (SmolLM2)": "1. " * 40,
    "Tibetan digits": "".join(f"{d}. བཀྲ་ཤིས་བདེ་ལེགས། " for d in "༡༢༣༤༥"),
}
DISTINCT_LISTS = {
    "numbered names": "1. 宋智克\n2. 李明\n3. 王芳\n4. 张伟\n5. 刘洋",
    "numbered inline": "1. 北京 2. 上海 3. 广州 4. 深圳 5. 天津",
    "articles": "第1条 禁止吸烟。第2条 禁止喧哗。第3条 爱护公物。第4条 保持安静。",
    "Chinese numerals": "一、政治\n二、经济\n三、文化\n四、社会\n五、生态",
    "circled numbers": "① 北京 ② 上海 ③ 广州 ④ 深圳",
    "items sharing a frame": "1. 苹果的价格是5元\n2. 香蕉的价格是3元\n3. 梨的价格是4元\n4. 桃的价格是6元",
    "places": "第1名宋智克，第2名李明，第3名王芳，第4名张伟",
    "steps": "Step 1: mix the flour. Step 2: add the water. Step 3: bake it. Step 4: let it cool.",
    "bullets": "- 宋智克\n- 李明\n- 王芳\n- 张伟",
    "Tibetan": "༡. བཀྲ་ཤིས་བདེ་ལེགས། ༢. ཐུགས་རྗེ་ཆེ། ༣. ག་ལེར་ཕེབས། ༤. ག་ལེར་བཞུགས།",
    "scores and times, not enumerators": "比分3:2，时间10:30，人数1、2、3，共2.5万人，比分3:2，时间10:30",
    "bracketed years": "（1）2001年入学 （2）2005年毕业 （3）2010年工作 （4）2015年出国",
}


@pytest.mark.parametrize("name", list(REPEATED_LISTS))
def test_a_list_repeating_one_item_is_repetitive(name):
    assert is_repetitive(REPEATED_LISTS[name])


@pytest.mark.parametrize("name", list(DISTINCT_LISTS))
def test_a_list_of_distinct_items_is_not(name):
    assert not is_repetitive(DISTINCT_LISTS[name])


@pytest.mark.parametrize("name", ["health", "cleaning"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(f"alignment_tax.metrics.{name}"))
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_outputs_are_repetitive(name):
    assert is_repetitive(DEGENERATE[name]) and not is_empty(DEGENERATE[name])


@pytest.mark.parametrize("name", list(VALID))
def test_valid_outputs_are_not(name):
    assert not is_repetitive(VALID[name])


def test_units_by_script():
    assert units("北京大学") == ["北", "京", "大", "学"]
    assert units("བཀྲ་ཤིས་བདེ་ལེགས།") == ["བཀྲ", "ཤིས", "བདེ", "ལེགས"]
    assert units("The cat, the CAT.") == ["the", "cat", "the", "cat"]
    assert units("……！") == ["…", "…", "！"] and units("  ") == []


def test_loop_share_by_hand():
    # "今天好" then 哈×5: the loop is 5 of 8 units.
    assert loop_share(list("今天好哈哈哈哈哈")) == pytest.approx(5 / 8)
    # ab×3 then c: 6 of 7; the block "ab" needs 3 copies, "abab" + "a" is not enough.
    assert loop_share(list("abababc")) == pytest.approx(6 / 7)
    assert loop_share(list("ababa")) == 0.0
    # A final partial copy belongs to the loop: abc abc abc ab = 11 of 11.
    assert loop_share(list("abcabcabcab")) == 1.0
    # Two loops add up: xxx (3) + yzyzyz (6) of 10 units.
    assert loop_share(list("xxxqyzyzyz")) == pytest.approx(9 / 10)
    assert loop_share([]) == 0.0 and loop_share(list("ab")) == 0.0


def test_distinct_share_by_hand():
    assert distinct_share(list("abcdefg")) == 1.0
    # a b a b a b a b: 4-grams abab, baba, abab, baba, abab → 2 distinct of 5.
    assert distinct_share(list("abababab")) == pytest.approx(2 / 5)
    assert distinct_share(list("abc")) == 1.0  # no 4-gram


def test_each_rule_on_its_own():
    # Loop share exactly at the threshold counts (8 units, 4 inside the loop of 哈).
    assert is_repetitive("今天很好哈哈哈哈")
    assert not is_repetitive("今天很好吗哈哈哈")  # 3 of 8 in the loop; 4-grams all distinct
    # No loop (a separator breaks every period), but few distinct 4-grams: a 10-character block
    # five times with 4 separators: 54 units, 51 4-grams, 7 inside the block + 4 × 4 across a
    # separator = 23 distinct.
    text = (
        "甲乙丙丁戊己庚辛壬癸一甲乙丙丁戊己庚辛壬癸二甲乙丙丁戊己庚辛壬癸三甲乙丙丁戊己庚辛壬癸四甲乙丙丁戊己庚辛壬癸"
    )
    assert (
        loop_share(units(text)) == 0.0 and distinct_share(units(text)) == pytest.approx(23 / 51) and is_repetitive(text)
    )


def test_empty_is_what_the_metrics_see():
    assert is_empty("") and is_empty("   \n") and is_empty(None) and is_empty("<think>\n想一想\n</think>\n")
    assert not is_empty("。") and not is_empty("0")
    assert not is_repetitive("") and not is_repetitive(None)


def test_off_script_is_one_minus_lang_consistency():
    assert health.is_off_script("北京", "zh", 1.0) is False and health.is_off_script("北京", "zh", 0.0) is True
    assert health.is_off_script("北京", "bo") and not health.is_off_script("བཀྲ་ཤིས།", "bo")
    assert health.item_flags("北京") == {"empty": False, "repetitive": False}  # no target language: no off_script


def test_rates_and_the_truncated_pass_through():
    items = [
        {"output": o, "lang_consistency": c} for o, c in (("", 0.0), ("哈" * 20, 1.0), ("北京", 1.0), ("Beijing", 0.0))
    ]
    rates = health.flag_items(items, "zh")
    assert rates == {"n": 4, "empty_rate": 0.25, "repetition_rate": 0.25, "off_script_rate": 0.5}
    assert [item["off_script"] for item in items] == [True, False, False, True]
    # truncated: from the items' flags when every item has one, else from the task's metrics.
    for item, cut in zip(items, (False, True, False, False)):
        item["truncated"] = cut
    assert health.health_rates(items)["truncated_rate"] == 0.25
    assert health.health_rates([{"empty": False}], {"truncated_rate": 0.5}) == {
        "n": 1,
        "empty_rate": 0.0,
        "truncated_rate": 0.5,
    }
    assert health.degenerate_share(rates) == 0.5 and not health.mostly_degenerate(rates)


@pytest.fixture(scope="module")
def gold_strings(shared_data):
    strings = {}
    for name in ("cmrc2018_dev", "cmrc2018_trial"):
        data = json.loads((shared_data / "cmrc2018" / f"{name}.json").read_text(encoding="utf-8"))
        strings[name] = [
            a["text"] for art in data["data"] for par in art["paragraphs"] for qa in par["qas"] for a in qa["answers"]
        ]
    for name in ("cmilbench_bo_zh", "openpecha_bo_zh"):
        rows = [
            json.loads(line)
            for line in (shared_data / "bo_zh_mt" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        strings[f"{name} bo"], strings[f"{name} zh"] = [r["bo"] for r in rows], [r["zh"] for r in rows]
    rows = (shared_data / "bo_text" / "tibetanqa_title_passage.jsonl").read_text(encoding="utf-8").splitlines()
    strings["tibetanqa titles"] = [json.loads(line)["title"] for line in rows]
    return strings


def test_no_gold_reference_is_flagged(gold_strings):
    assert sum(map(len, gold_strings.values())) > 18_000
    flagged = {name: [s for s in texts if is_repetitive(s) or is_empty(s)] for name, texts in gold_strings.items()}
    assert flagged == {name: [] for name in gold_strings}


def _sample(doc_id, output, **metrics):
    return {
        "doc_id": doc_id,
        "doc": {"id": f"x{doc_id}", "source": f"src{doc_id}", "reference": "བཀྲ་ཤིས།"},
        "arguments": [[f"prompt {doc_id}", {}]],
        "filtered_resps": [output],
        **metrics,
    }


def test_own_task_items_and_health():
    outputs = ["བཀྲ་ཤིས།", " <think></think> ", "བཀྲ་ཤིས་" * 10, "hello"]
    consistency = [1.0, 0.0, 1.0, 0.0]
    samples = [_sample(i, o, rouge_l=10.0, lang_consistency=c) for i, (o, c) in enumerate(zip(outputs, consistency))]
    result = {"rouge_l,none": 10.0, "lang_consistency,none": 0.5}
    scores = score_own_task("bo_headline", result, samples, None, seed=0)
    flags = [(item["empty"], item["repetitive"], item["off_script"]) for item in scores.items]
    assert flags == [(False, False, False), (True, False, True), (False, True, False), (False, False, True)]
    assert scores.health == {"n": 4, "empty_rate": 0.25, "repetition_rate": 0.25, "off_script_rate": 0.5}
    assert scores.health["off_script_rate"] == pytest.approx(1 - scores.metrics["lang_consistency"])
    assert not set(scores.metrics) & health.HEALTH_RATES  # rates never sit among the metrics here


def test_truncation_flags_become_a_health_rate_and_stay_beside_the_metrics():
    samples = [_sample(i, "བཀྲ་ཤིས།", rouge_l=10.0, lang_consistency=1.0) for i in range(4)]
    known = {0: True, 1: False, 2: False, 3: None}  # the cache knows three of the four
    scores = score_own_task(
        "bo_headline", {"rouge_l,none": 10.0}, samples, None, seed=0, truncated=lambda sample: known[sample["doc_id"]]
    )
    assert scores.metrics["truncated_rate"] == pytest.approx(1 / 3)  # as the generation layer counts it
    assert scores.health["truncated_rate"] == pytest.approx(1 / 3) and "truncated" not in scores.items[3]


def test_builtin_generation_task_gets_health_and_loglikelihood_does_not():
    generated = score_other_task(
        {"exact_match,none": 0.5}, [_sample(0, "北京", exact_match=1.0), _sample(1, "", exact_match=0.0)]
    )
    assert generated.health == {"n": 2, "empty_rate": 0.5, "repetition_rate": 0.0}
    assert [item["empty"] for item in generated.items] == [False, True] and "off_script" not in generated.items[0]
    choices = [_sample(0, [[-1.0, False], [-2.0, True]], acc=1.0)]
    scored = score_other_task({"acc,none": 1.0}, choices)
    assert scored.health is None and "empty" not in scored.items[0]


def test_tax_leaves_health_rates_out():
    candidate = {"t": {"bleu": 3.0, "bleu_stderr": 0.1, "truncated_rate": 0.5}}
    assert compute_tax(candidate, {"t": {"bleu": 1.0, "truncated_rate": 0.1}}) == {"t": {"bleu": 2.0}}
