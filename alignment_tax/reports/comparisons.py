"""Differences between two runs with their uncertainty, computed only where they are comparable.

Two runs are compared on a task only when they were scored on the same items (the same ids
with the same inputs); otherwise the difference is *flagged*, not computed. For comparable
runs every difference gets a paired percentile-bootstrap 95% interval and a two-sided
bootstrap p-value (the share of resampled differences on the other side of zero, doubled),
2,000 resamples, seeded:

* mean metrics (EM, F1, ROUGE, similarity, ...): :func:`alignment_tax.metrics.stats.paired_bootstrap`
  on the per-item values;
* corpus BLEU/chrF: the corpus score is recomputed from resampled sentence statistics
  (:func:`alignment_tax.metrics.translation.corpus_statistics`), so the interval is about the
  corpus score, not a mean of sentence scores; both runs use the same resamples of the items;
* drift: texts are resampled (a cluster bootstrap) and the pooled per-token mean recomputed.

Binary per-item metrics (CMRC EM, language consistency, accuracy) also get McNemar's exact
test (a two-sided binomial test on the items that flipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

from alignment_tax.metrics.stats import minimum_detectable_effect, paired_bootstrap
from alignment_tax.reports.runs import Run
from alignment_tax.tasks.prompts import TARGET_LANGUAGE  # task -> language of its outputs, from the task YAMLs

CORPUS_METRICS = ("bleu", "chrf")
N_RESAMPLES = 2000
SEED = 0


@dataclass(frozen=True)
class Flips:
    """Items a binary metric marks right for one run and wrong for the other."""

    lost: int  # right for b (the reference side), wrong for a
    gained: int  # wrong for b, right for a
    p_value: float  # McNemar's exact test: two-sided binomial on the discordant items


@dataclass
class Difference:
    """``a − b`` on one metric (a task's, or drift's), with its interval when comparable."""

    task: str
    metric: str
    a: Run
    b: Run
    value_a: float | None
    value_b: float | None
    difference: float | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    n: int = 0
    method: str = ""
    flips: Flips | None = None
    flag: str | None = None  # why there is no interval
    mde: float | None = None  # the smallest true difference this comparison detects (α 0.05, power 0.8)

    @property
    def comparable(self) -> bool:
        return self.flag is None and self.ci is not None

    @property
    def significant(self) -> bool:
        return self.comparable and (self.ci[0] > 0 or self.ci[1] < 0)


def _key(row: dict[str, Any]) -> str:
    value = row.get("source", row.get("input"))
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and np.isfinite(value):
        return float(value)
    return None


def is_binary(values: np.ndarray) -> bool:
    unique = set(np.unique(values).tolist())
    return unique <= {0.0, 1.0} or unique <= {0.0, 100.0}


def mcnemar(a: np.ndarray, b: np.ndarray) -> Flips:
    """McNemar's exact test of two binary per-item results on the same items."""
    top = max(float(np.max(a, initial=0)), float(np.max(b, initial=0)), 1.0)
    right_a, right_b = a >= top, b >= top
    lost = int(np.sum(right_b & ~right_a))
    gained = int(np.sum(right_a & ~right_b))
    p_value = float(binomtest(gained, lost + gained, 0.5).pvalue) if lost + gained else 1.0
    return Flips(lost, gained, p_value)


class Comparator:
    """Computes (and caches) differences between runs; every bootstrap is seeded."""

    def __init__(self, n_resamples: int = N_RESAMPLES, seed: int = SEED):
        self.n_resamples = n_resamples
        self.seed = seed
        self._cache: dict[tuple, Any] = {}  # what each method below computed, by its arguments (runs by id)

    def _memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def paired_items(self, task: str, a: Run, b: Run) -> tuple[list[dict], list[dict]] | str:
        """The two runs' records on the same items in a's order, or why they are not comparable."""
        return self._memo(("pair", task, id(a), id(b)), lambda: self._pair(task, a, b))

    @staticmethod
    def _pair(task: str, a: Run, b: Run) -> tuple[list[dict], list[dict]] | str:
        if task not in a.metrics or task not in b.metrics:
            missing = a if task not in a.metrics else b
            return f"{missing.name} has no {task} results"
        rows_a, rows_b = a.samples(task), b.samples(task)
        if rows_a is None or rows_b is None:
            return f"{(a if rows_a is None else b).name} has no per-item records for {task}"
        by_id = {row["id"]: row for row in rows_b}
        common = [row["id"] for row in rows_a if row["id"] in by_id]
        if len(common) != len(rows_a) or len(common) != len(rows_b):
            return (
                f"scored on different items ({a.name}: {len(rows_a)}, {b.name}: {len(rows_b)}, {len(common)} in common)"
            )
        for row in rows_a:
            if _key(row) != _key(by_id[row["id"]]):
                return f"scored on different items (item {row['id']!r} has different inputs)"
        return rows_a, [by_id[row["id"]] for row in rows_a]

    def metric(self, task: str, metric: str, a: Run, b: Run) -> Difference:
        return self._memo(("metric", task, metric, id(a), id(b)), lambda: self._metric(task, metric, a, b))

    def _metric(self, task: str, metric: str, a: Run, b: Run) -> Difference:
        diff = Difference(task, metric, a, b, a.metrics.get(task, {}).get(metric), b.metrics.get(task, {}).get(metric))
        if diff.value_a is None or diff.value_b is None:
            diff.flag = f"{(b if diff.value_a is not None else a).name} has no {task} {metric}"
            return diff
        paired = self.paired_items(task, a, b)
        if isinstance(paired, str):
            diff.flag = paired
            return diff
        rows_a, rows_b = paired
        diff.n = len(rows_a)
        if diff.n < 2:
            diff.flag = f"{diff.n} item: too few for an interval"
            diff.difference = diff.value_a - diff.value_b
            return diff
        if metric in CORPUS_METRICS and task in TARGET_LANGUAGE:
            return self._corpus(diff, rows_a, rows_b)
        field = metric.split(",")[0]
        values = [[as_number(row.get(field)) for row in rows] for rows in (rows_a, rows_b)]
        if any(value is None for side in values for value in side):
            diff.flag = f"no per-item values of {metric}"
            diff.difference = diff.value_a - diff.value_b
            return diff
        values_a, values_b = (np.asarray(side, dtype=np.float64) for side in values)
        result = paired_bootstrap(values_a, values_b, n_resamples=self.n_resamples, seed=self.seed)
        self._fill(diff, result, "paired bootstrap over items (mean)")
        if is_binary(values_a) and is_binary(values_b):
            diff.flips = mcnemar(values_a, values_b)
        return diff

    def _corpus(self, diff: Difference, rows_a: list[dict], rows_b: list[dict]) -> Difference:
        order = sorted(range(len(rows_a)), key=lambda i: rows_a[i]["id"])
        ids = tuple(rows_a[i]["id"] for i in order)
        score_a, scores_a = self._corpus_scores(diff.a, diff.task, diff.metric, [rows_a[i] for i in order], ids)
        score_b, scores_b = self._corpus_scores(diff.b, diff.task, diff.metric, [rows_b[i] for i in order], ids)
        return self._fill(
            diff,
            percentile_result(score_a - score_b, scores_a - scores_b),
            "paired bootstrap over items (corpus score)",
        )

    def _corpus_scores(
        self, run: Run, task: str, metric: str, rows: list[dict], ids: tuple
    ) -> tuple[float, np.ndarray]:
        """The run's corpus score on these items, and on each resample of them (the same resamples for every run)."""

        def compute() -> tuple[float, np.ndarray]:
            from alignment_tax.metrics.translation import corpus_statistics

            outputs = [str(row.get("output") or "") for row in rows]
            references = [str(row.get("reference") or "") for row in rows]
            scorer, statistics = corpus_statistics(metric, outputs, references, TARGET_LANGUAGE[task])
            summed = self.resample_counts(len(rows)) @ statistics  # every resample's summed statistics
            score = _corpus_score(scorer, statistics.sum(axis=0))
            return score, np.array([_corpus_score(scorer, row) for row in summed])

        return self._memo(("corpus", id(run), task, metric, ids), compute)

    def resample_counts(self, n: int) -> np.ndarray:
        """How often each of n items is drawn in each resample: (n_resamples, n), seeded, shared by all comparisons."""

        def draw() -> np.ndarray:
            rng = np.random.default_rng(self.seed)
            return rng.multinomial(n, np.full(n, 1.0 / n), size=self.n_resamples).astype(np.float64)

        return self._memo(("counts", n), draw)

    @staticmethod
    def _fill(diff: Difference, result: dict[str, float], method: str) -> Difference:
        diff.difference = result["difference"]
        diff.ci = (result["ci_low"], result["ci_high"])
        diff.p_value = result["p_value"]
        diff.method = method
        # A zero-width interval (every resample agreed, e.g. identical outputs) has no spread to
        # size an effect from: "would detect ≥ 0" would be wrong, so there is no MDE.
        low, high = diff.ci
        diff.mde = minimum_detectable_effect(low, high, n=diff.n) if high > low else None
        return diff

    def drift(self, quantity: str, a: Run, b: Run | None) -> Difference:
        """Pooled per-token ``kl``, ``nll`` or ``delta_nll`` of a, minus b's (b None: a's own, vs its base)."""
        return self._memo(("drift", quantity, id(a), id(b)), lambda: self._drift(quantity, a, b))

    def _drift(self, quantity: str, a: Run, b: Run | None) -> Difference:
        reference = b if b is not None else a.base if a.base is not None else a
        diff = Difference(
            "drift", quantity, a, reference, _drift_mean(a, quantity), _drift_mean(b, quantity) if b else 0.0
        )
        if diff.value_a is None or diff.value_b is None:
            diff.flag = f"{(a if diff.value_a is None else reference).name} has no drift results"
            return diff
        if b is not None and a.drift_corpus != b.drift_corpus:
            diff.flag = "drift measured on different texts"
            return diff
        sums_a = _per_text(a.drift_tokens, quantity)
        sums_b = _per_text(b.drift_tokens, quantity) if b is not None else None
        if sums_b is not None and (sums_a[1].shape != sums_b[1].shape or not np.array_equal(sums_a[1], sums_b[1])):
            diff.flag = "drift measured on different tokens (another tokenizer or window?)"
            return diff
        diff.n = len(sums_a[1])
        if diff.n < 2:
            diff.flag = "one text: too few for an interval"
            return diff
        counts = self.resample_counts(diff.n)
        observed = sums_a[0].sum() / sums_a[1].sum()
        resampled = (counts @ sums_a[0]) / (counts @ sums_a[1])
        if sums_b is not None:
            observed -= sums_b[0].sum() / sums_b[1].sum()
            resampled = resampled - (counts @ sums_b[0]) / (counts @ sums_b[1])
        return self._fill(
            diff, percentile_result(float(observed), resampled), "paired bootstrap over texts (pooled per-token mean)"
        )


def percentile_result(observed: float, distribution: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """A percentile interval and two-sided p-value from resampled differences, as
    :func:`alignment_tax.metrics.stats.paired_bootstrap` defines them."""
    alpha = (1 - confidence) / 2
    low, high = np.quantile(distribution, [alpha, 1 - alpha])
    p_value = min(1.0, 2 * min(float(np.mean(distribution <= 0)), float(np.mean(distribution >= 0))))
    return {"difference": float(observed), "ci_low": float(low), "ci_high": float(high), "p_value": p_value}


def _corpus_score(scorer: object, summed: np.ndarray) -> float:
    # As alignment_tax.metrics.translation.score_from_statistics, without a Python loop per value.
    return float(scorer._compute_score_from_stats(np.rint(summed).astype(np.int64).tolist()).score)


def _drift_mean(run: Run | None, quantity: str) -> float | None:
    if run is None or run.drift is None:
        return None
    value = (run.drift.get(quantity) or {}).get("mean")
    return float(value) if isinstance(value, (int, float)) else None


def _per_text(tokens: dict[str, np.ndarray], quantity: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-text sums of the quantity and token counts, texts in index order."""
    values = tokens["nll"] - tokens["base_nll"] if quantity == "delta_nll" else tokens[quantity]
    index = tokens["text_index"].astype(int)
    present = np.unique(index)
    sums = np.bincount(index, weights=values)[present]
    counts = np.bincount(index)[present].astype(np.float64)
    return sums, counts
