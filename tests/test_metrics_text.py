"""BLEU, chrF, ROUGE, segmentation and script consistency: hand-checked values in Chinese and Tibetan."""

import math

import pytest

from alignment_tax.errors import UserError
from alignment_tax.metrics.rouge import rouge_scores
from alignment_tax.metrics.scripts import is_script_consistent, script_consistency, script_for
from alignment_tax.metrics.segmentation import segment, segment_for_bleu
from alignment_tax.metrics.suites import headline_suite, translation_suite
from alignment_tax.metrics.translation import corpus_bleu, corpus_chrf, sentence_bleu

TASHI_DELEK = "བཀྲ་ཤིས་བདེ་ལེགས།"


class TestSegmentation:
    def test_chinese_by_character_latin_by_word(self):
        assert segment("我爱 NLP 2024年") == ["我", "爱", "nlp", "2024", "年"]

    def test_tibetan_by_syllable(self):
        assert segment(TASHI_DELEK) == ["བཀྲ", "ཤིས", "བདེ", "ལེགས"]
        assert segment("༄༅། །ཀློང་ཆེན་པའི་") == ["ཀློང", "ཆེན", "པའི"]

    def test_non_breaking_tsheg_is_a_boundary_too(self):
        assert segment("བཀྲ\u0f0cཤིས") == ["བཀྲ", "ཤིས"]

    def test_punctuation_tokens_for_bleu(self):
        assert segment_for_bleu(TASHI_DELEK) == "བཀྲ ཤིས བདེ ལེགས །"
        assert segment("你好，世界。", keep_punctuation=True) == ["你", "好", "，", "世", "界", "。"]

    def test_other_scripts_split_on_spaces(self):
        assert segment("ئۇيغۇر تىلى") == ["ئۇيغۇر", "تىلى"]
        assert segment("ᠮᠣᠩᠭᠣᠯ ᠬᠡᠯᠡ") == ["ᠮᠣᠩᠭᠣᠯ", "ᠬᠡᠯᠡ"]


class TestBleu:
    def test_chinese_brevity_penalty_by_hand(self):
        # 4 of 7 characters, every n-gram precision 1: BLEU = exp(1 - 7/4) = 0.47237
        score = corpus_bleu(["我爱北京"], ["我爱北京天安门"], "zh")
        assert score.score == pytest.approx(100 * math.exp(1 - 7 / 4), abs=1e-6)
        assert "tok:zh" in score.signature

    def test_tibetan_is_syllable_segmented(self):
        # Syllables + shad: prediction 2 tokens, reference 5: every precision 1, BP = exp(1 - 5/2).
        # Only 1 order of n-grams... the 3- and 4-gram counts are zero, so corpus BLEU is 0:
        assert corpus_bleu(["བཀྲ་ཤིས་"], [TASHI_DELEK], "bo").score == 0
        same = corpus_bleu([TASHI_DELEK], [TASHI_DELEK], "bo")
        assert same.score == pytest.approx(100)
        assert same.signature.endswith("|pre:nfc+tsheg-fold+bo-syllables")
        # Unsegmented, sacrebleu would see one token and a single substitution would zero it.
        near = corpus_bleu(["བཀྲ་ཤིས་བདེ་ལེགས་ཡིན།"], [TASHI_DELEK], "bo").score
        assert 0 < near < 100

    def test_tsheg_variants_do_not_change_scores(self):
        variant = TASHI_DELEK.replace("\u0f0b", "\u0f0c")
        assert corpus_bleu([variant], [TASHI_DELEK], "bo").score == pytest.approx(100)
        assert corpus_chrf([variant], [TASHI_DELEK], "bo").score == pytest.approx(100)

    def test_sentence_bleu_is_smoothed_and_zero_for_empty(self):
        scores = sentence_bleu(["我爱北京", ""], ["我爱北京天安门", "好"], "zh")
        assert scores[0] == pytest.approx(100 * math.exp(1 - 7 / 4), abs=1e-6)
        assert scores[1] == 0

    def test_chrf_identical_and_disjoint(self):
        assert corpus_chrf(["我爱北京天安门"], ["我爱北京天安门"]).score == pytest.approx(100)
        assert corpus_chrf(["甲乙丙"], ["丁戊己"]).score == 0

    def test_length_mismatch_is_a_user_error(self):
        with pytest.raises(UserError):
            corpus_bleu(["a"], ["a", "b"])


class TestRouge:
    @pytest.mark.parametrize(
        "text", [TASHI_DELEK, "北京大学", "hello world", "ئۇيغۇر تىلى", "ᠮᠣᠩᠭᠣᠯ ᠬᠡᠯᠡ", "。，", "།།"]
    )
    def test_identical_non_empty_strings_score_one_in_every_script(self, text):
        assert rouge_scores(text, text) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}

    @pytest.mark.parametrize("text", ["北", "ᠮᠣᠩᠭᠣᠯ", "。", "།"])
    def test_single_token_strings_have_no_bigrams(self, text):
        # Standard ROUGE-2: a one-token text has no bigram to match, so only ROUGE-1/L are 1.
        assert rouge_scores(text, text) == {"rouge1": 1.0, "rouge2": 0.0, "rougeL": 1.0}

    def test_chinese_by_hand(self):
        scores = rouge_scores("北京大学", "北京")
        assert scores["rouge1"] == pytest.approx(2 / 3)  # P 2/4, R 2/2
        assert scores["rouge2"] == pytest.approx(0.5)  # P 1/3, R 1/1
        assert scores["rougeL"] == pytest.approx(2 / 3)

    def test_tibetan_by_hand(self):
        scores = rouge_scores("བདེ་ལེགས་བཀྲ་ཤིས།", TASHI_DELEK)
        assert scores["rouge1"] == pytest.approx(1.0)
        assert scores["rouge2"] == pytest.approx(2 / 3)  # 2 of 3 bigrams on each side
        assert scores["rougeL"] == pytest.approx(0.5)  # LCS 2 of 4

    def test_empty_prediction_scores_zero(self):
        assert rouge_scores("", TASHI_DELEK)["rougeL"] == 0


class TestScriptConsistency:
    @pytest.mark.parametrize(
        "text, language, expected",
        [
            (TASHI_DELEK, "bo", 1),
            ("བཀྲ་ཤིས། 2024 (ཚོགས་)", "bo", 1),
            ("བཀྲ་ཤིས་ 你好", "bo", 0),
            ("北京", "bo", 0),
            ("", "bo", 0),
            ("2024 。", "zh", 0),  # no letter of the target script
            ("我爱北京天安门。", "zh", 1),
            ("我爱 Beijing", "zh", 0),
            ("ئۇيغۇر تىلى", "ug", 1),
            ("ئۇيغۇر tili", "ug", 0),
            ("قازاق تىلى", "kk", 1),
            ("ᠮᠣᠩᠭᠣᠯ ᠬᠡᠯᠡ", "mn", 1),
            ("Монгол хэл", "mn", 0),
            ("hello, world!", "en", 1),
            ("café", "en", 1),
        ],
    )
    def test_cases(self, text, language, expected):
        assert is_script_consistent(text, language) == expected

    def test_codes_resolve_case_insensitively(self):
        assert script_for("BOD_Tibt") is script_for("bo")

    def test_unknown_language_is_a_user_error(self):
        with pytest.raises(UserError, match="unknown language code 'xx'"):
            script_consistency([], "xx")


class TestSuites:
    def test_translation_suite_means_equal_aggregates(self):
        result = translation_suite(["我爱北京", "天安门"], ["我爱北京天安门", "天安门"], "zh")
        assert set(result.aggregates) == {"bleu", "chrf", "lang_consistency"}
        assert result.aggregates["lang_consistency"] == 1.0
        assert [item["lang_consistency"] for item in result.items] == [1.0, 1.0]
        assert "tok:zh" in result.signatures["bleu"]

    def test_headline_suite_on_0_100(self):
        result = headline_suite([TASHI_DELEK, "北京"], [TASHI_DELEK, TASHI_DELEK], "bo")
        assert result.aggregates["rouge_l"] == pytest.approx(50.0)
        assert result.aggregates["lang_consistency"] == pytest.approx(0.5)
        assert [item["rouge_l"] for item in result.items] == [100.0, 0.0]

    def test_nothing_to_score(self):
        with pytest.raises(UserError):
            translation_suite([], [])
