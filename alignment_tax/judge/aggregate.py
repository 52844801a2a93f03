"""From judgements to per-pair outcomes (A's side) and the summary statistics.

Rules: a pair judged in both orders has outcome ``a``/``b``/``tie`` when the two orders agree
on it, and ``tie`` when they disagree (a judge that just prefers a position gives all ties);
a pair with an unreadable verdict (after its re-ask) or a rejected request in any order is
``invalid`` and left out of every rate (``n_rejected`` counts those rejected); a pair with an order
not yet judged (a stopped run) is ``pending``.

Statistics over the valid pairs:

* ``win_rate`` = (wins + ties / 2) / valid, with a 95% percentile-bootstrap interval over pairs
  (10,000 resamples, seeded; :func:`~alignment_tax.metrics.stats.win_rate_bootstrap`).
* ``p_value``: two-sided exact sign test (``scipy.stats.binomtest``) of wins against losses,
  ties dropped, as usual for a sign test; 1.0 when every pair is a tie.
* ``win_pct_a`` / ``win_pct_b``: the shares of valid pairs each side wins, in percent (the
  study's "LLM-Judge Win (%)" columns; the rest are ties).
* ``position_consistency``: the share of valid pairs whose two orders named the same winner.
* ``first_position_share``: of the non-tie verdicts in valid pairs, the share naming the candidate
  shown first (0.5 for a judge without position bias, 1.0 for one that always picks it).

>>> summarize([{"outcome": "a", "consistent": True}, {"outcome": "tie", "consistent": False}])["win_rate"]
0.75
"""

from __future__ import annotations

from scipy.stats import binomtest

from alignment_tax.judge.runner import Judgement
from alignment_tax.metrics.stats import win_rate_bootstrap

N_RESAMPLES = 10_000
CONFIDENCE = 0.95


def winner(judgement: Judgement) -> str | None:
    """``a``, ``b`` or ``tie``, from a verdict about positions and the order shown."""
    if judgement.verdict is None:
        return None
    if judgement.verdict.verdict == "tie":
        return "tie"
    first_is_a = judgement.order == "ab"
    return "a" if (judgement.verdict.verdict == "first") == first_is_a else "b"


def outcome(judgements: list[Judgement | None]) -> tuple[str, bool | None]:
    """The pair's outcome and whether its orders agreed (``None`` with fewer than two)."""
    if any(j is None for j in judgements):
        return "pending", None
    winners = [winner(j) for j in judgements]
    if any(w is None for w in winners):
        return "invalid", None
    if len(winners) == 1:
        return winners[0], None
    agree = len(set(winners)) == 1
    return (winners[0] if agree else "tie"), agree


def summarize(records: list[dict], seed: int = 0) -> dict:
    """The summary statistics of per-pair records (each with ``outcome`` and ``consistent``)."""
    counts = {name: 0 for name in ("a", "b", "tie", "invalid", "pending")}
    for record in records:
        counts[record["outcome"]] += 1
    wins, losses, ties = counts["a"], counts["b"], counts["tie"]
    valid = wins + losses + ties
    valid_records = [r for r in records if r["outcome"] in ("a", "b", "tie")]
    both_orders = [r["consistent"] for r in valid_records if r["consistent"] is not None]
    decided = wins + losses
    positional = [j.get("verdict") for r in valid_records for j in r.get("judgements", [])]
    positional = [v for v in positional if v in ("first", "second")]
    return {
        "n_pairs": valid + counts["invalid"],
        "n_valid": valid,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "n_invalid": counts["invalid"],
        "n_pending": counts["pending"],
        "n_rejected": sum(any(j.get("rejected") for j in r.get("judgements", [])) for r in records),
        "win_rate": (wins + 0.5 * ties) / valid if valid else None,
        "win_rate_ci": win_rate_bootstrap(wins, ties, losses, CONFIDENCE, N_RESAMPLES, seed),
        "win_rate_ci_method": f"percentile bootstrap over pairs, {N_RESAMPLES} resamples, seed {seed}, "
        f"{CONFIDENCE:.0%}",
        "p_value": float(binomtest(wins, decided, 0.5).pvalue) if decided else 1.0,
        "p_value_method": "two-sided exact sign test (scipy.stats.binomtest), wins vs losses, ties dropped",
        "win_pct_a": 100.0 * wins / valid if valid else None,
        "win_pct_b": 100.0 * losses / valid if valid else None,
        "tie_pct": 100.0 * ties / valid if valid else None,
        "position_consistency": sum(both_orders) / len(both_orders) if both_orders else None,
        "first_position_share": positional.count("first") / len(positional) if positional else None,
    }
