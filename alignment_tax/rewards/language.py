"""The paper's language-consistency reward (§3.4.2): 1 when the output stays in the target script."""

from __future__ import annotations

from collections.abc import Iterable

from alignment_tax.metrics.scripts import is_script_consistent, parse_tolerance, script_for
from alignment_tax.rewards.base import RewardFunction


class LanguageConsistencyReward(RewardFunction):
    """1.0 when every letter of the completion is in ``language``'s script (and there is one), else 0.0.

    The rule is :func:`alignment_tax.metrics.scripts.is_script_consistent`, the same one the
    ``lang_consistency`` metric uses: digits, punctuation and spaces are free; mixed,
    off-target or empty text is 0. An unknown language code is a ``UserError`` at construction.
    ``tolerance`` (e.g. ``"acronyms=5"``) relaxes the rule exactly as it does for the metric.

    >>> reward = LanguageConsistencyReward("bo")
    >>> reward(completions=["བཀྲ་ཤིས་བདེ་ལེགས།", "你好", "བཀྲ་ཤིས 你好", ""])
    [1.0, 0.0, 0.0, 0.0]
    """

    name = "language"
    needs_reference = False

    def __init__(self, language: str, stop: Iterable[str] = (), name: str | None = None, tolerance=None):
        super().__init__(stop=stop, name=name)
        script_for(language)  # unknown code -> UserError now, not mid-training
        self.language = language
        self.tolerance = parse_tolerance(tolerance)

    def score(self, texts: list[str], references: list[str] | None) -> list[float]:
        return [is_script_consistent(text, self.language, self.tolerance) for text in texts]

    def __repr__(self) -> str:
        if self.tolerance.strict:
            return f"LanguageConsistencyReward({self.language!r})"
        return f"LanguageConsistencyReward({self.language!r}, tolerance={str(self.tolerance)!r})"
