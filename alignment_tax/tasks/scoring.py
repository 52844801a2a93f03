"""Per-item scores (``process_results``) and corpus-level aggregations for the tasks.

lm-eval calls ``process_results(doc, results)`` once per document with ``results`` = the
filtered generations (one string for ``generate_until``); each returns a dict keyed by the
metric names in the YAML's ``metric_list``. Mean metrics are per-item numbers; ``bleu`` and
``chrf`` are ``(prediction, reference)`` pairs that the module-level aggregations below turn
into one corpus score, as BLEU is not a mean of sentence scores.

Predictions are cleaned only of what no metric should see: surrounding whitespace and a
complete leading ``<think>…</think>`` block (reasoning models).

>>> process_cmrc2018({"reference": ["北京", "北京市"]}, ["北京。"])
{'em': 100.0, 'f1': 100.0, 'average': 100.0}
>>> round(bleu_zh([("我爱北京天安门", "我爱北京天安门")]), 6)
100.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from alignment_tax.metrics.cleaning import clean_prediction
from alignment_tax.metrics.cmrc import cmrc_em, cmrc_f1
from alignment_tax.metrics.rouge import rouge_scores
from alignment_tax.metrics.scripts import is_script_consistent, parse_tolerance
from alignment_tax.metrics.translation import corpus_bleu, corpus_chrf
from alignment_tax.tasks.prompts import target_language

HEADLINE_LANG = target_language("bo_headline")


# The docs of one run carry one tolerance string (or none: strict); parse it once.
_tolerance = functools.lru_cache(maxsize=8)(parse_tolerance)


def _prediction(results: Sequence[Any]) -> str:
    # generate_until gives one string per document (after the take_first filter); tolerate a
    # bare string too.
    return clean_prediction(results if isinstance(results, str) else results[0])


def process_cmrc2018(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """EM and F1 on 0–100 against every reference answer (official CMRC 2018 rules), and their mean."""
    prediction = _prediction(results)
    references = doc["reference"]
    if isinstance(references, str):
        references = [references]
    em = 100.0 * cmrc_em(prediction, references)
    f1 = 100.0 * cmrc_f1(prediction, references)
    return {"em": em, "f1": f1, "average": (em + f1) / 2}


def process_translation(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    """``(prediction, reference)`` for the corpus metrics; script consistency with the target (0/1)."""
    prediction = _prediction(results)
    pair = (prediction, doc["reference"])
    return {
        "bleu": pair,
        "chrf": pair,
        "lang_consistency": is_script_consistent(prediction, doc["target_lang"], _tolerance(doc.get("lang_tolerance"))),
    }


def process_headline(doc: dict[str, Any], results: Sequence[Any]) -> dict[str, float]:
    """ROUGE-1/2/L F-measure × 100 (syllable tokens) and Tibetan script consistency (0/1)."""
    prediction = _prediction(results)
    scores = rouge_scores(prediction, doc["reference"])
    return {
        "rouge_1": 100.0 * scores["rouge1"],
        "rouge_2": 100.0 * scores["rouge2"],
        "rouge_l": 100.0 * scores["rougeL"],
        "lang_consistency": is_script_consistent(prediction, HEADLINE_LANG, _tolerance(doc.get("lang_tolerance"))),
    }


def _unzip(items: Sequence[Sequence[str]]) -> tuple[list[str], list[str]]:
    predictions = [str(item[0]) for item in items]
    references = [str(item[1]) for item in items]
    return predictions, references


def _corpus(metric: Callable, items: Sequence[Sequence[str]], target_lang: str) -> float:
    predictions, references = _unzip(items)
    return float(metric(predictions, references, target_lang).score)


# One module-level function per (metric, target language): lm-eval's aggregation receives only
# the list of per-item values, so the target language has to be in the function.
def bleu_zh(items: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (sacrebleu, ``zh`` tokenizer) on 0–100."""
    return _corpus(corpus_bleu, items, "zh")


def chrf_zh(items: Sequence[Sequence[str]]) -> float:
    """Corpus chrF on 0–100, Chinese targets."""
    return _corpus(corpus_chrf, items, "zh")


def bleu_bo(items: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 on 0–100 over Tibetan syllables (``tokenize="none"`` after segmentation)."""
    return _corpus(corpus_bleu, items, "bo")


def chrf_bo(items: Sequence[Sequence[str]]) -> float:
    """Corpus chrF on 0–100, Tibetan targets."""
    return _corpus(corpus_chrf, items, "bo")
