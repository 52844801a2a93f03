"""ROUGE-1/2/L F-measures with a script-aware tokenizer (see :mod:`.segmentation`)."""

from __future__ import annotations

from rouge_score.rouge_scorer import RougeScorer

from alignment_tax.errors import UserError
from alignment_tax.metrics.segmentation import ScriptAwareTokenizer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_SCORER = RougeScorer(list(ROUGE_TYPES), tokenizer=ScriptAwareTokenizer())


def rouge_scores(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE F-measures in [0, 1] for one prediction against one reference.

    >>> rouge_scores("བཀྲ་ཤིས་བདེ་ལེགས།", "བཀྲ་ཤིས་བདེ་ལེགས།")
    {'rouge1': 1.0, 'rouge2': 1.0, 'rougeL': 1.0}
    >>> round(rouge_scores("北京大学", "北京")["rouge1"], 3)
    0.667
    """
    scores = _SCORER.score(target=reference, prediction=prediction)
    return {name: scores[name].fmeasure for name in ROUGE_TYPES}


def rouge(predictions: list[str], references: list[str]) -> list[dict[str, float]]:
    """Per-item :func:`rouge_scores`; the task metric is the mean of each key."""
    if len(predictions) != len(references):
        raise UserError(f"{len(predictions)} predictions but {len(references)} references")
    return [rouge_scores(p, r) for p, r in zip(predictions, references)]
