"""A length constraint relative to the reference, for the reward ablation (paper §4.5)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from alignment_tax.metrics.segmentation import segment
from alignment_tax.rewards.base import REFERENCE_COLUMN, RewardFunction


def length_units(text: str) -> int:
    """Length in script-aware units: Han characters, Tibetan syllables, other words (no punctuation).

    >>> length_units("我爱北京"), length_units("བཀྲ་ཤིས་བདེ་ལེགས།"), length_units("hello world")
    (4, 4, 2)
    """
    return len(segment(text, keep_punctuation=False))


def length_score(completion_units: int, reference_units: int, tolerance: float = 0.5, falloff: float = 2.0) -> float:
    """1 inside the tolerance band, falling linearly in log-ratio to 0 one more ``falloff`` factor out.

    With ``r = completion / reference`` (in :func:`length_units`) and ``d = |ln r|``, the score
    is 1 when ``d ≤ ln(1 + tolerance)`` and ``max(0, 1 − (d − ln(1 + tolerance)) / ln(falloff))``
    beyond. Defaults: 1 between 2/3 and 1.5 times the reference length, 0 below 1/3 or above 3
    times it. An empty completion is 0; against an empty reference, only an empty output would fit.

    >>> length_score(10, 10), length_score(15, 10), length_score(30, 10), length_score(0, 10)
    (1.0, 1.0, 0.0, 0.0)
    >>> round(length_score(20, 10), 4)
    0.585
    """
    if completion_units <= 0:
        return 0.0
    if reference_units <= 0:
        return 0.0
    distance = abs(math.log(completion_units / reference_units))
    band = math.log1p(tolerance)
    if distance <= band:
        return 1.0
    return max(0.0, 1.0 - (distance - band) / math.log(falloff))


class LengthReward(RewardFunction):
    """How well the completion's length matches its reference's (see :func:`length_score`).

    The paper tried "an additional length-constraint reward for translation" without saying
    which; this one keeps a translation within ``tolerance`` of the reference's length (in Han
    characters / Tibetan syllables / words), with no reward once it is ``falloff`` times further off.

    >>> reward = LengthReward()
    >>> reward(completions=["我爱北京", "我", ""], reference=["我爱北京", "我爱北京", "我爱北京"])
    [1.0, 0.0, 0.0]
    """

    name = "length"
    needs_reference = True

    def __init__(
        self,
        tolerance: float = 0.5,
        falloff: float = 2.0,
        stop: Iterable[str] = (),
        reference_column: str = REFERENCE_COLUMN,
        name: str | None = None,
    ):
        super().__init__(stop=stop, reference_column=reference_column, name=name)
        if tolerance < 0:
            raise ValueError(f"tolerance must be ≥ 0, got {tolerance}")
        if falloff <= 1:
            raise ValueError(f"falloff must be > 1, got {falloff}")
        self.tolerance = float(tolerance)
        self.falloff = float(falloff)

    def score(self, texts: list[str], references: list[str] | None) -> list[float]:
        return [
            length_score(length_units(text), length_units(reference), self.tolerance, self.falloff)
            for text, reference in zip(texts, references or [])
        ]

    def __repr__(self) -> str:
        return f"LengthReward(tolerance={self.tolerance}, falloff={self.falloff})"
