"""Percentile summaries and bootstrap intervals over paired items."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from alignment_tax.errors import UserError

PERCENTILES = (50, 90, 99)


def percentile_summary(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean, p50, p90 and p99 (numpy's default linear interpolation) and the count.

    >>> percentile_summary([1, 2, 3, 4])
    {'mean': 2.5, 'p50': 2.5, 'p90': 3.7, 'p99': 3.97, 'n': 4}
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise UserError("cannot summarise an empty set of values")
    summary = {"mean": float(array.mean())}
    for q, value in zip(PERCENTILES, np.percentile(array, PERCENTILES)):
        summary[f"p{q}"] = round(float(value), 12)
    summary["n"] = int(array.size)
    return summary


def minimum_detectable_effect(
    ci_low: float, ci_high: float, n: int | None = None, confidence: float = 0.95, power: float = 0.8
) -> float:
    """The smallest true difference a paired comparison with this interval detects with ``power``.

    The standard error is read off the interval: a percentile bootstrap interval is about
    ±z_{1-α/2} bootstrap SDs, and the bootstrap SD is the plug-in one (n in the denominator), so
    SE = width / (2 z) · √(n / (n - 1)). The MDE is the difference at which a paired t-test on n
    items (n - 1 degrees of freedom) reaches ``power``: the noncentrality δ/SE solving
    P(T' > t_{1-α/2}) = power for T' noncentral t. The far tail is left out; it adds under 1e-6
    of power at any n. Normal quantiles, (z_{1-α/2} + z_{power}) · SE, would be about 9% low at
    n = 16; without ``n`` they are what is used (the large-n limit). For α = 0.05 and power 0.8
    that limit is 1.43 times the interval's half-width; zero for a zero-width interval.

    >>> round(minimum_detectable_effect(-1.96, 1.96), 4)
    2.8016
    >>> round(minimum_detectable_effect(-1.96, 1.96, n=16), 4)
    3.0962
    """
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    se = (ci_high - ci_low) / (2 * z)
    if n is None:
        return (z + float(stats.norm.ppf(power))) * se
    if n < 2:
        raise UserError(f"a minimum detectable effect needs at least two paired items, got {n}")
    return _t_test_noncentrality(n - 1, confidence, power) * se * math.sqrt(n / (n - 1))


@lru_cache(maxsize=256)
def _t_test_noncentrality(df: int, confidence: float, power: float) -> float:
    """The noncentrality at which a two-sided t-test with ``df`` degrees of freedom has ``power``."""
    critical = float(stats.t.ppf(0.5 + confidence / 2, df))

    def shortfall(noncentrality: float) -> float:
        return float(stats.nct.sf(critical, df, noncentrality)) - power

    # The normal answer plus the critical value is a start; double until it brackets the root
    # (df = 1 needs about 16).
    high = critical + float(stats.norm.ppf(power))
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-10))


def _mean_difference(candidate: np.ndarray, baseline: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(candidate, axis=axis) - np.mean(baseline, axis=axis)


def paired_bootstrap(
    candidate: Sequence[float],
    baseline: Sequence[float],
    statistic: Callable[..., float] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Confidence interval for ``statistic(candidate) - statistic(baseline)`` on paired items.

    Items are resampled together (the same indices for both systems), which is what makes the
    interval about the *difference* on the same inputs. The default statistic is the difference
    of means; pass ``statistic(candidate_values, baseline_values) -> float`` for a corpus-level
    metric such as BLEU (it then receives resampled item arrays). ``p_value`` is the two-sided
    share of resampled differences on the other side of zero.
    """
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise UserError(f"paired values need equal 1-D lengths, got {a.shape} and {b.shape}")
    if a.size < 2:
        raise UserError("a bootstrap needs at least two paired items")
    vectorized = statistic is None
    fn = _mean_difference if vectorized else (lambda x, y: statistic(x, y))
    observed = float(fn(a, b))
    result = stats.bootstrap(
        (a, b),
        fn,
        paired=True,
        vectorized=vectorized,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    distribution = np.asarray(result.bootstrap_distribution)
    below = float(np.mean(distribution <= 0))
    above = float(np.mean(distribution >= 0))
    return {
        "difference": observed,
        "ci_low": float(result.confidence_interval.low),
        "ci_high": float(result.confidence_interval.high),
        "confidence": confidence,
        "p_value": min(1.0, 2 * min(below, above)),
        "n": int(a.size),
        "n_resamples": n_resamples,
        "seed": seed,
    }


def outcome_bootstrap(
    wins: int,
    ties: int,
    losses: int,
    statistic: Callable[[np.ndarray, int], np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> list[float] | None:
    """Percentile-bootstrap interval of ``statistic(draws, n)`` over n paired win/tie/loss outcomes.

    A resample of the pairs is a multinomial draw of the three counts (``draws``: one row of
    wins, ties, losses per resample): the same distribution as :func:`paired_bootstrap`
    resampling the pairs, in O(1) per resample. None when there is no pair.

    >>> outcome_bootstrap(3, 0, 0, lambda draws, n: (draws[:, 0] - draws[:, 2]) / n)
    [1.0, 1.0]
    """
    n = wins + ties + losses
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [wins / n, ties / n, losses / n], size=n_resamples)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(statistic(draws, n), [alpha, 1 - alpha])
    return [float(low), float(high)]


def win_rate_bootstrap(
    wins: int, ties: int, losses: int, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> list[float] | None:
    """Percentile-bootstrap interval of the win rate (wins + ties / 2) / n (see :func:`outcome_bootstrap`).

    >>> win_rate_bootstrap(0, 4, 0)
    [0.5, 0.5]
    """
    return outcome_bootstrap(wins, ties, losses, win_rate, confidence, n_resamples, seed)


def win_rate(draws: np.ndarray, n: int) -> np.ndarray:
    """(wins + ties / 2) / n for each row of win/tie/loss counts."""
    return (draws[:, 0] + 0.5 * draws[:, 1]) / n
