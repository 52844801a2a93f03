"""CMRC 2018 scorer: hand-checked cases from docs/metrics-cmrc2018.md and the official dev-set numbers."""

import json

import pytest

from alignment_tax.metrics.cmrc import (
    cmrc_em,
    cmrc_f1,
    longest_common_run,
    mixed_segmentation,
    score_predictions,
    strip_punctuation,
)


@pytest.mark.parametrize(
    "reference, prediction, em, f1",
    [
        ("北京", "", 0, 0),
        ("北京", "北 京", 0, 1),
        ("北京", "北京。", 1, 1),
        ("北京", "北京.", 0, 0.8),  # "." is not in the official set: 3 tokens, 2 match
        ("甲乙丙丁", "甲丙", 0, 1 / 3),  # contiguous run 1: P 1/2, R 1/4
        ("甲乙丙丁", "丁丙乙甲", 0, 0.25),  # a bag of characters would give 1
        ("，", "。", 1, 0),  # both empty after punctuation removal
    ],
)
def test_hand_checked_cases(reference, prediction, em, f1):
    assert cmrc_em(prediction, [reference]) == em
    assert cmrc_f1(prediction, [reference]) == pytest.approx(f1)


def test_segmentation_keeps_runs_across_removed_punctuation():
    assert mixed_segmentation("光荣和ω-force") == ["光", "荣", "和", "ωforce"]
    assert mixed_segmentation("2010年NBA总决赛") == ["2010", "年", "nba", "总", "决", "赛"]
    # Without removal, official punctuation ends the run and is a token itself.
    assert mixed_segmentation("a-b", remove_punctuation=False) == ["a", "-", "b"]


def test_ellipsis_and_unlisted_punctuation_are_kept():
    # "……" is in the official list as one string, so a single "…" is never removed.
    assert strip_punctuation("好…") == "好…"
    assert strip_punctuation("（好）") == "好"
    assert strip_punctuation("【好】") == "【好】"
    assert strip_punctuation("好, ‘x’") == "好, ‘x"  # ASCII comma and ‘ kept, ’ removed


def test_only_lower_and_strip_no_width_folding_or_space_collapsing():
    assert cmrc_em(" ABC ", ["abc"]) == 1
    assert cmrc_em("ＡＢＣ", ["abc"]) == 0
    assert cmrc_em("a  b", ["a b"]) == 0


def test_best_reference_counts_and_model_like_answers_score_partially():
    assert cmrc_f1("村雨城", ["村", "村雨城"]) == 1
    # "答案是：村雨城。": 6 tokens after removal, 3 match → P 1/2, R 1 → F1 2/3
    assert cmrc_f1("答案是：村雨城。", ["村雨城"]) == pytest.approx(2 / 3)
    assert cmrc_em("答案是：村雨城。", ["村雨城"]) == 0


def test_longest_common_run_is_contiguous():
    assert longest_common_run(list("abcxabcd"), list("zabcdz")) == 4
    assert longest_common_run([], list("a")) == 0


def _dev_questions(dataset):
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield qa["id"], paragraph["context"], qa["answers"][0]["text"]


@pytest.fixture(scope="module")
def cmrc_dev(shared_data):
    return json.loads((shared_data / "cmrc2018" / "cmrc2018_dev.json").read_text(encoding="utf-8"))


def test_official_numbers_on_the_dev_set(cmrc_dev):
    questions = list(_dev_questions(cmrc_dev))
    assert len(questions) == 3219
    gold = score_predictions(cmrc_dev, {qid: answer for qid, _, answer in questions})
    assert gold == {"AVERAGE": "100.000", "F1": "100.000", "EM": "100.000", "TOTAL": 3219, "SKIP": 0}

    five = score_predictions(cmrc_dev, {qid: context[:5] for qid, context, _ in questions})
    assert (five["AVERAGE"], five["F1"], five["EM"]) == ("3.547", "6.939", "0.155")

    half = score_predictions(
        cmrc_dev, {qid: answer[: max(1, len(answer) // 2)] for qid, _, answer in questions}
    )
    assert (half["AVERAGE"], half["F1"], half["EM"]) == ("28.809", "56.778", "0.839")

    partial = score_predictions(cmrc_dev, {qid: answer for qid, _, answer in questions[:1609]})
    assert (partial["AVERAGE"], partial["F1"], partial["EM"]) == ("49.984", "49.984", "49.984")
    assert partial["SKIP"] == 3219 - 1609


def test_unknown_ids_are_ignored_and_non_strings_are_stringified(cmrc_dev):
    first_id, _, answer = next(_dev_questions(cmrc_dev))
    result = score_predictions(cmrc_dev, {first_id: answer, "NOT_A_QUESTION": "x"})
    assert result["SKIP"] == 3218
    assert cmrc_em(2010, ["2010"]) == 1
