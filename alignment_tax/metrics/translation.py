"""BLEU-4 and chrF with sacrebleu, tokenised for the target language.

sacrebleu's default ``13a`` tokenizer leaves Chinese as one token per sentence (BLEU ≈ 0), so
Chinese targets use its ``zh`` tokenizer. sacrebleu has no Tibetan tokenizer: Tibetan targets
are segmented into syllables first (see :mod:`alignment_tax.metrics.segmentation`) and scored
with ``tokenize="none"``. chrF works on characters and needs no segmentation. Every score
carries sacrebleu's signature, which is what makes a BLEU number comparable with another.

Every text is normalised first (:func:`~alignment_tax.data.normalize.normalize_text`: NFC, then
U+0F0C → U+0F0B), as everywhere in the package; this changes scores against the raw text (NFC
folds the CJK compatibility ideographs U+F900–U+FAFF into their unified twins, and the data mixes
both tshegs), so the signature ends in ``|pre:`` and the steps, e.g. ``|pre:nfc+tsheg-fold`` or
``|pre:nfc+tsheg-fold+bo-syllables``: the sacrebleu CLI run on files preprocessed so gives the
same number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from alignment_tax.data.normalize import NORMALIZATION_STEPS, normalize_text
from alignment_tax.errors import UserError
from alignment_tax.metrics.scripts import HAN, TIBETAN, script_for
from alignment_tax.metrics.segmentation import segment_for_bleu


@dataclass(frozen=True)
class CorpusScore:
    score: float
    signature: str


def _bleu_tokenizer(target_lang: str) -> str:
    script = script_for(target_lang)
    if script is HAN:
        return "zh"
    if script is TIBETAN:
        return "none"
    return "13a"


# The name of segment_for_bleu in a signature's ``pre:`` element.
BO_SYLLABLES_STEP = "bo-syllables"


def _segments_for_bleu(target_lang: str) -> bool:
    return script_for(target_lang) is TIBETAN


def _prepare_for_bleu(texts: list[str], target_lang: str) -> list[str]:
    if _segments_for_bleu(target_lang):
        # segment_for_bleu normalises before segmenting.
        return [segment_for_bleu(text) for text in texts]
    return [normalize_text(text) for text in texts]


def _prepare_for_chrf(texts: list[str]) -> list[str]:
    return [normalize_text(text) for text in texts]


def _with_preprocessing(signature: object, steps: tuple[str, ...]) -> str:
    """sacrebleu's signature plus a ``pre:`` element naming what was done to the text before it."""
    # sacrebleu scores the text it is given; without this a reader would run it on raw text.
    return f"{signature}|pre:{'+'.join(steps)}"


def _check_lengths(predictions: list[str], references: list[str]) -> None:
    if len(predictions) != len(references):
        raise UserError(f"{len(predictions)} predictions but {len(references)} references")


def _bleu_signature(metric: BLEU, target_lang: str) -> str:
    steps = NORMALIZATION_STEPS + ((BO_SYLLABLES_STEP,) if _segments_for_bleu(target_lang) else ())
    return _with_preprocessing(metric.get_signature(), steps)


def _chrf_signature(metric: CHRF) -> str:
    return _with_preprocessing(metric.get_signature(), NORMALIZATION_STEPS)


def _bleu(target_lang: str, sentence_level: bool) -> BLEU:
    # Sentence BLEU needs smoothing or any sentence without a 4-gram match is 0; "exp" is
    # sacrebleu's default for sentence_bleu.
    return BLEU(tokenize=_bleu_tokenizer(target_lang), effective_order=sentence_level)


def corpus_bleu(predictions: list[str], references: list[str], target_lang: str = "zh") -> CorpusScore:
    """Corpus BLEU-4 on 0–100 with one reference per prediction.

    >>> round(corpus_bleu(["我爱北京天安门"], ["我爱北京天安门"], "zh").score, 6)
    100.0
    """
    _check_lengths(predictions, references)
    metric = _bleu(target_lang, sentence_level=False)
    result = metric.corpus_score(
        _prepare_for_bleu(predictions, target_lang), [_prepare_for_bleu(references, target_lang)]
    )
    return CorpusScore(result.score, _bleu_signature(metric, target_lang))


def sentence_bleu(predictions: list[str], references: list[str], target_lang: str = "zh") -> list[float]:
    """Per-item smoothed sentence BLEU on 0–100 (for per-item records and bootstraps)."""
    _check_lengths(predictions, references)
    metric = _bleu(target_lang, sentence_level=True)
    prepared = zip(_prepare_for_bleu(predictions, target_lang), _prepare_for_bleu(references, target_lang))
    return [metric.sentence_score(prediction, [reference]).score for prediction, reference in prepared]


def corpus_chrf(predictions: list[str], references: list[str], target_lang: str = "zh") -> CorpusScore:
    """Corpus chrF (character 6-grams, β = 2) on 0–100."""
    _check_lengths(predictions, references)
    script_for(target_lang)
    metric = CHRF()
    result = metric.corpus_score(_prepare_for_chrf(predictions), [_prepare_for_chrf(references)])
    return CorpusScore(result.score, _chrf_signature(metric))


def sentence_chrf(predictions: list[str], references: list[str], target_lang: str = "zh") -> list[float]:
    """Per-item chrF on 0–100."""
    _check_lengths(predictions, references)
    script_for(target_lang)
    metric = CHRF()
    prepared = zip(_prepare_for_chrf(predictions), _prepare_for_chrf(references))
    return [metric.sentence_score(prediction, [reference]).score for prediction, reference in prepared]


def corpus_statistics(
    metric_name: str, predictions: list[str], references: list[str], target_lang: str = "zh"
) -> tuple[object, np.ndarray]:
    """Per-sentence sufficient statistics of corpus BLEU or chrF, and the metric to score them.

    A corpus score is a function of the *summed* statistics, so a bootstrap resamples rows of
    this array and sums them instead of re-tokenising every sentence on every resample.
    """
    _check_lengths(predictions, references)
    if metric_name == "bleu":
        metric = _bleu(target_lang, sentence_level=False)
        hypotheses, refs = _prepare_for_bleu(predictions, target_lang), _prepare_for_bleu(references, target_lang)
    elif metric_name == "chrf":
        script_for(target_lang)
        metric = CHRF()
        hypotheses, refs = _prepare_for_chrf(predictions), _prepare_for_chrf(references)
    else:
        raise ValueError(f"no corpus statistics for {metric_name!r}")
    stats = np.asarray(metric._extract_corpus_statistics(hypotheses, [refs]), dtype=np.float64)
    return metric, stats


def score_from_statistics(metric: object, summed: np.ndarray) -> float:
    """The corpus score of summed :func:`corpus_statistics` rows."""
    values = [int(round(value)) for value in summed]
    return float(metric._compute_score_from_stats(values).score)


def corpus_bootstrap_stderr(
    metric_name: str,
    predictions: list[str],
    references: list[str],
    target_lang: str = "zh",
    n_resamples: int = 1000,
    seed: int = 0,
) -> float:
    """Standard error of corpus BLEU/chrF: the std of its scores over resampled corpora."""
    if len(predictions) < 2:
        return float("nan")
    metric, stats = corpus_statistics(metric_name, predictions, references, target_lang)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(stats), size=(n_resamples, len(stats)))
    scores = [score_from_statistics(metric, stats[row].sum(axis=0)) for row in indices]
    return float(np.std(scores, ddof=1))


def signatures_for(target_lang: str) -> dict[str, str]:
    """The sacrebleu signatures that corpus BLEU and chrF carry for ``target_lang``."""
    # A signature records the number of references, which sacrebleu learns from a scoring call.
    return {
        "bleu": corpus_bleu(["x"], ["x"], target_lang).signature,
        "chrf": corpus_chrf(["x"], ["x"], target_lang).signature,
    }
