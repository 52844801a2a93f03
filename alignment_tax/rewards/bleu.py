"""Sentence BLEU as a reward, for the reward ablation (paper §4.5)."""

from __future__ import annotations

from collections.abc import Iterable

from alignment_tax.metrics.scripts import script_for
from alignment_tax.metrics.translation import sentence_bleu
from alignment_tax.rewards.base import REFERENCE_COLUMN, RewardFunction


class BleuReward(RewardFunction):
    """Smoothed sentence BLEU-4 of each completion against its reference, on 0–1.

    Tokenised as the ``bleu`` metric is for ``target_lang`` (sacrebleu's ``zh`` tokenizer for
    Chinese, syllables for Tibetan; see :mod:`alignment_tax.metrics.translation`), with
    sacrebleu's default ``exp`` smoothing and effective order, divided by 100. Empty → 0.

    >>> reward = BleuReward("zh")
    >>> reward(completions=["我爱北京天安门", ""], reference=["我爱北京天安门", "我爱北京天安门"])
    [1.0, 0.0]
    """

    name = "bleu"
    needs_reference = True

    def __init__(
        self,
        target_lang: str = "zh",
        stop: Iterable[str] = (),
        reference_column: str = REFERENCE_COLUMN,
        name: str | None = None,
    ):
        super().__init__(stop=stop, reference_column=reference_column, name=name)
        script_for(target_lang)
        self.target_lang = target_lang

    def score(self, texts: list[str], references: list[str] | None) -> list[float]:
        references = references or []
        scores = [0.0] * len(texts)
        present = [i for i, text in enumerate(texts) if text]
        if present:
            values = sentence_bleu([texts[i] for i in present], [references[i] for i in present], self.target_lang)
            for i, value in zip(present, values):
                scores[i] = min(1.0, max(0.0, value / 100.0))
        return scores

    def __repr__(self) -> str:
        return f"BleuReward({self.target_lang!r})"
