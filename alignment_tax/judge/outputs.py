"""Writing the judge's summary and per-pair records: atomically, and never for the worse.

A rerun that stops early (a refusing or dead server, ``--max-calls``) must not replace the
summary of a finished run of the same comparison with a less complete one: its verdicts are in
the cache anyway, and the finished summary is what a report reads. So the outputs are replaced
only by a summary of another comparison, or one at least as complete (complete first, then
judged pairs, then valid ones).

>>> old = {"task": "t", "complete": True, "n_pairs": 3, "n_pending": 0, "n_valid": 2}
>>> at_least_as_complete(old | {"complete": False, "n_pairs": 1, "n_pending": 2}, old)
False
>>> at_least_as_complete(old | {"n_valid": 3}, old), at_least_as_complete(old | {"task": "u"}, old)
(True, True)
"""

from __future__ import annotations

import json
from pathlib import Path

from alignment_tax.paths import write_text_atomically

# What makes two summaries describe the same comparison (the pairs planned included).
_IDENTITY = ("task", "run_a", "run_b", "seed", "only_in_a_ids", "only_in_b_ids")
_JUDGE_IDENTITY = ("model", "template", "orders")


def _identity(summary: dict) -> tuple:
    judge = summary.get("judge") or {}
    planned = (summary.get("n_pairs") or 0) + (summary.get("n_pending") or 0)
    return (
        tuple(json.dumps(summary.get(k), sort_keys=True) for k in _IDENTITY),
        tuple(json.dumps(judge.get(k), sort_keys=True) for k in _JUDGE_IDENTITY),
        planned,
    )


def _completeness(summary: dict) -> tuple:
    return bool(summary.get("complete")), summary.get("n_pairs") or 0, summary.get("n_valid") or 0


def at_least_as_complete(new: dict, old: dict) -> bool:
    """Whether ``new`` may replace ``old``: another comparison, or no less complete."""
    return _identity(new) != _identity(old) or _completeness(new) >= _completeness(old)


def _read_summary(path: Path) -> dict | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: nothing worth keeping
        return None
    return found if isinstance(found, dict) else None


def write_outputs(output: Path, records_path: Path, summary: dict, records: list[dict]) -> bool:
    """Write the records, then the summary, unless ``output`` holds a more complete summary of the
    same comparison; ``True`` when written."""
    previous = _read_summary(output)
    if previous is not None and not at_least_as_complete(summary, previous):
        return False
    write_text_atomically(records_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    write_text_atomically(output, json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return True
