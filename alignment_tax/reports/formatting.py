"""Names and number formats shared by the HTML and Markdown reports.

Metrics on 0–100 (CMRC, BLEU, chrF, ROUGE) get two decimals, metrics on 0–1 (similarity,
language consistency, accuracy) and drift four, as in the reference study's tables.
"""

from __future__ import annotations

import math

from alignment_tax.reports.comparisons import TARGET_LANGUAGE, Difference
from alignment_tax.reports.health import all_wrong, degenerate_gain

PERCENT_METRICS = frozenset({"em", "f1", "average", "bleu", "chrf", "rouge_1", "rouge_2", "rouge_l"})
METRIC_LABELS = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge_1": "ROUGE-1",
    "rouge_2": "ROUGE-2",
    "rouge_l": "ROUGE-L",
    "similarity": "Similarity",
    "lang_consistency": "Lang. consistency",
    "em": "EM",
    "f1": "F1",
    "average": "Avg",
    "acc": "Acc",
    "acc_norm": "Acc (norm)",
    "exact_match": "Exact match",
    "kl": "KL",
    "nll": "NLL",
    "delta_nll": "ΔNLL",
}
TASK_TITLES = {
    "bo_zh_mt": "Tibetan → Chinese translation",
    "zh_bo_mt": "Chinese → Tibetan translation",
    "bo_headline": "Tibetan headline generation",
    "cmrc2018": "CMRC 2018 (Chinese reading comprehension)",
    "drift": "Drift from the base (per-token NLL and KL on the drift corpus)",
}
TASK_SHORT = {"cmrc2018": "CMRC"}
# Lower is better for these (drift); every task metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"kl", "nll", "delta_nll"})


def is_target_task(task: str) -> bool:
    """A target-language (Tibetan) task; every other task measures the tax."""
    lowered = task.lower()
    return task in TARGET_LANGUAGE or lowered.startswith("bo_") or "bod" in lowered or "tibt" in lowered


def metric_label(metric: str) -> str:
    name, _, filter_name = metric.partition(",")
    label = METRIC_LABELS.get(name, name)
    return f"{label} ({filter_name})" if filter_name else label


def column_label(task: str, metric: str) -> str:
    """``CMRC Avg``, ``cmmlu Acc``: a tax column's header."""
    return f"{TASK_SHORT.get(task, task)} {metric_label(metric)}"


def task_title(task: str) -> str:
    return TASK_TITLES.get(task, task)


def _decimals(metric: str) -> int:
    return 2 if metric.split(",")[0] in PERCENT_METRICS else 4


def value(metric: str, number: float | None) -> str:
    if number is None or not math.isfinite(number):
        return "—"
    return f"{number:.{_decimals(metric)}f}"


def signed(metric: str, number: float | None) -> str:
    if number is None or not math.isfinite(number):
        return "—"
    text = f"{number:+.{_decimals(metric)}f}"
    return text.replace("-", "−")


def interval(metric: str, ci: tuple[float, float] | None) -> str:
    if ci is None:
        return ""
    return f"[{signed(metric, ci[0])}, {signed(metric, ci[1])}]"


def points(number: float | None) -> str:
    """A difference of percentages, in points: ``+12.5``, ``−3.0``."""
    return "—" if number is None else f"{number:+.1f}".replace("-", "−")


def p_value(p: float | None) -> str:
    if p is None:
        return "—"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def percent(number: float | None) -> str:
    return "—" if number is None else f"{number:.1f}"


def direction(diff: Difference | None) -> str:
    """``better``/``worse`` when the interval excludes 0, else ``unclear``; ``flagged`` when not compared;
    ``suspect`` for a difference won by outputs that are mostly empty or repetitive, or between
    answers all wrong (never a success, nor a tax)."""
    if diff is None:
        return "none"
    if not diff.comparable:
        return "flagged" if diff.flag else "none"
    if degenerate_gain(diff) or all_wrong(diff):
        return "suspect"
    if not diff.significant:
        return "unclear"
    up = diff.ci[0] > 0
    return "worse" if up == (diff.metric in LOWER_IS_BETTER) else "better"


def detectable(diff: Difference) -> str:
    """The smallest difference this comparison would have detected, where it says something
    (an interval across 0 with a width); else ""."""
    if diff.comparable and not diff.significant and diff.mde and math.isfinite(diff.mde):
        return f"{abs(diff.mde):.{_decimals(diff.metric)}f}"
    return ""


def difference_text(diff: Difference, mde: bool = True) -> str:
    """``+1.20 [+0.40, +2.00]`` or ``not compared: <why>``; ``mde=False`` leaves out the
    "would detect" clause (a table that shows it in a column of its own)."""
    if diff.flag and diff.difference is None:
        return f"not compared: {diff.flag}"
    main = f"{signed(diff.metric, diff.difference)} {interval(diff.metric, diff.ci)}".strip()
    # An interval that includes 0 is "nothing detected", not "no difference": say how large a
    # difference this run would have detected (α 0.05, power 0.8; metrics.stats).
    size = detectable(diff) if mde else ""
    return f"{main} (would detect ≥ {size})" if size else main


def health_rate(rate: float | None) -> str:
    """A health rate (0–1) as a percentage: ``12.5%``."""
    return "—" if rate is None or not math.isfinite(rate) else f"{100 * rate:.1f}%"


def judge_share(entry) -> str:
    """A judge cell's headline number: the run's win %, or ``all tied`` (0% there is not a loss)."""
    return "all tied" if entry.all_tied else percent(entry.pct)


def judge_record(entry) -> str:
    """``20 won, 5 tied, 15 lost`` (or ``all 40 tied``) against ``entry.other``."""
    wins, ties, losses = entry.record
    counts = f"all {ties} tied" if entry.all_tied else f"{wins} won, {ties} tied, {losses} lost"
    return f"{counts} vs {entry.other}"
