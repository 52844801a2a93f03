"""Which of a task's metrics is its headline: the one a summary line, a plot axis or a gap row shows.

The package's tasks take the reference study's columns (Table 3: BLEU for translation, ROUGE-L
for headlines, CMRC's Avg of EM and F1); any other lm-eval task takes its first usual score.

>>> headline_metric("cmrc2018", ["em", "f1", "average"])
'average'
>>> headline_metric("cmmlu", {"acc": 0.41, "acc_norm": 0.43})
'acc'
"""

from __future__ import annotations

from collections.abc import Iterable

HEADLINE = {"bo_zh_mt": "bleu", "zh_bo_mt": "bleu", "bo_headline": "rouge_l", "cmrc2018": "average"}
PREFERENCE = ("acc", "acc_norm", "exact_match", "average", "f1", "em")


def headline_metric(task: str, metrics: Iterable[str]) -> str | None:
    """``metrics``: the task's metric names (a results dict's keys will do); stderr entries are skipped."""
    names = [name for name in metrics if not name.endswith("_stderr")]
    if HEADLINE.get(task) in names:
        return HEADLINE[task]
    for name in PREFERENCE:
        if name in names:
            return name
    plain = [name for name in names if "," not in name] or names
    return plain[0] if plain else None
