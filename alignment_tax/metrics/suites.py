"""The metric bundle of each target task, as aggregates plus per-item values.

Both ``alignment-tax score`` and the evaluation tasks call these, so a number means the same
thing wherever it is reported. Per-item values are kept so reports can bootstrap and drill
down; every mean-aggregated metric's aggregate is exactly the mean of its per-item values.
BLEU and chrF are corpus-level: their aggregate is the corpus score, and the per-item
``bleu``/``chrf`` are sentence-level scores for inspection only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alignment_tax.errors import UserError
from alignment_tax.metrics.embedding_cosine import Encoder, pairwise_cosine
from alignment_tax.metrics.rouge import ROUGE_TYPES, rouge
from alignment_tax.metrics.scripts import STRICT, Tolerance, script_consistency
from alignment_tax.metrics.translation import corpus_bleu, corpus_chrf, sentence_bleu, sentence_chrf

ROUGE_NAMES = {"rouge1": "rouge_1", "rouge2": "rouge_2", "rougeL": "rouge_l"}


@dataclass
class SuiteResult:
    aggregates: dict[str, float]
    items: list[dict[str, float]]
    signatures: dict[str, str] = field(default_factory=dict)


def _check(predictions: list[str], references: list[str]) -> None:
    if not predictions:
        raise UserError("nothing to score: no predictions")
    if len(predictions) != len(references):
        raise UserError(f"{len(predictions)} predictions but {len(references)} references")


def _add_mean_metric(result: SuiteResult, name: str, values: list[float]) -> None:
    for item, value in zip(result.items, values):
        item[name] = value
    result.aggregates[name] = float(np.mean(values))


def _add_shared_metrics(
    result: SuiteResult,
    predictions: list[str],
    references: list[str],
    target_lang: str,
    encoder: Encoder | None,
    tolerance: Tolerance = STRICT,
) -> None:
    _add_mean_metric(result, "lang_consistency", script_consistency(predictions, target_lang, tolerance))
    if encoder is not None:
        _add_mean_metric(result, "similarity", pairwise_cosine(encoder, predictions, references))


def translation_suite(
    predictions: list[str],
    references: list[str],
    target_lang: str = "zh",
    encoder: Encoder | None = None,
    tolerance: Tolerance = STRICT,
) -> SuiteResult:
    """BLEU and chrF (corpus), language consistency and, with an encoder, similarity."""
    _check(predictions, references)
    bleu = corpus_bleu(predictions, references, target_lang)
    chrf = corpus_chrf(predictions, references, target_lang)
    items = [
        {"bleu": b, "chrf": c}
        for b, c in zip(
            sentence_bleu(predictions, references, target_lang),
            sentence_chrf(predictions, references, target_lang),
        )
    ]
    result = SuiteResult(
        aggregates={"bleu": bleu.score, "chrf": chrf.score},
        items=items,
        signatures={"bleu": bleu.signature, "chrf": chrf.signature},
    )
    _add_shared_metrics(result, predictions, references, target_lang, encoder, tolerance)
    return result


def headline_suite(
    predictions: list[str],
    references: list[str],
    target_lang: str = "bo",
    encoder: Encoder | None = None,
    tolerance: Tolerance = STRICT,
) -> SuiteResult:
    """ROUGE-1/2/L (mean F-measure on 0–100), language consistency and, with an encoder, similarity."""
    _check(predictions, references)
    result = SuiteResult(aggregates={}, items=[{} for _ in predictions])
    per_item = rouge(predictions, references)
    for rouge_type in ROUGE_TYPES:
        _add_mean_metric(result, ROUGE_NAMES[rouge_type], [100.0 * scores[rouge_type] for scores in per_item])
    _add_shared_metrics(result, predictions, references, target_lang, encoder, tolerance)
    return result
