"""Output health in the report: each run's rates per generation task, and each item's flags.

A run written by ``evaluate`` records them (``health`` in ``results.json``, flags in the per-item
records); for a run written before that they are derived here from its per-item records with the
same definitions (:mod:`alignment_tax.metrics.health`), so an older run shows them too. A task
whose items record no text (log-likelihood tasks) has no health.

A run whose outputs on a task are mostly empty or repetitive
(:func:`~alignment_tax.metrics.health.mostly_degenerate`: more than half of its items) has no
meaningful gain on that task: :func:`degenerate_gain` picks out the differences such outputs win,
which the report marks with ⚠ in amber instead of colouring them as a success (or, against a
baseline that loops, as a loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alignment_tax.metrics import health as metrics_health
from alignment_tax.reports.comparisons import TARGET_LANGUAGE, Difference
from alignment_tax.reports.runs import Run, all_runs

RATE_LABELS = {
    "empty_rate": "empty",
    "repetition_rate": "repetitive",
    "off_script_rate": "off-script",
    "truncated_rate": "truncated",
}
FLAG_LABELS = {"empty": "empty", "repetitive": "repetitive", "off_script": "off-script", "truncated": "truncated"}
WARNING = "outputs mostly empty or repetitive (over half the items): gain not meaningful"
MARK = "⚠"
ALL_WRONG = "EM 0 on both sides (every answer wrong): a difference of character overlap, not meaningful"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _recorded(run: Run, task: str) -> dict[str, float]:
    """The rates the run's results.json holds for the task: its ``health`` block, and any rate
    written beside the metrics (e.g. a ``truncated_rate`` from the generation layer)."""
    beside = (run.results.get("tasks") or {}).get(task) or {}
    block = run.results.get("health")
    block = block.get(task) if isinstance(block, dict) else None
    found = {name: number for name in metrics_health.HEALTH_RATES if (number := _number(beside.get(name))) is not None}
    if isinstance(block, dict):
        found |= {name: number for name, value in block.items() if (number := _number(value)) is not None}
    return found


def task_health(run: Run, task: str) -> dict[str, float] | None:
    """``n`` and the health rates of the run's outputs on the task (None: not a generation task)."""
    return run.remember(("health", task), lambda: _task_health(run, task))[0]


def is_derived(run: Run, task: str) -> bool:
    """Whether the run's health on the task was derived here (a run written before health was recorded)."""
    return run.remember(("health", task), lambda: _task_health(run, task))[1]


def _task_health(run: Run, task: str) -> tuple[dict[str, float] | None, bool]:
    """The run's health on the task, and whether it was derived here."""
    recorded = _recorded(run, task)
    if set(recorded) & {"empty_rate", "repetition_rate"}:
        return recorded, False
    rows = run.samples(task) if task in run.metrics else None
    if not rows or not metrics_health.has_generated_text(rows):
        return recorded or None, False
    return metrics_health.health_rates([_flag_values(row, task) for row in rows], recorded), True


def _flag_values(row: dict[str, Any], task: str) -> dict[str, bool]:
    """Every flag the task's items have, True or False (``health_rates`` counts a flag all items carry)."""
    raised = set(row_flags(row, task))
    names = ["empty", "repetitive"] + (["off_script"] if task in TARGET_LANGUAGE else [])
    names += ["truncated"] if isinstance(row.get("truncated"), bool) else []
    return {name: name in raised for name in names}


def row_flags(row: dict[str, Any], task: str) -> list[str]:
    """The health flags raised on one item: as recorded, else computed from its output."""
    if not isinstance(row.get("output"), str):
        return []
    recorded = {flag: row[flag] for flag in FLAG_LABELS if isinstance(row.get(flag), bool)}
    if not {"empty", "repetitive"} <= set(recorded):
        computed = metrics_health.item_flags(row["output"], TARGET_LANGUAGE.get(task), row.get("lang_consistency"))
        recorded = computed | recorded
    return [flag for flag in FLAG_LABELS if recorded.get(flag)]


def gainer(diff: Difference | None) -> Run | None:
    """The run a difference favours (a when Δ > 0, b when Δ < 0; every task metric is higher-is-better)."""
    if diff is None or diff.difference is None or diff.difference == 0:
        return None
    return diff.a if diff.difference > 0 else diff.b


def degenerate_gain(diff: Difference | None) -> bool:
    """A difference won by outputs that are mostly empty or repetitive: a run's gain over its base
    made of loops, or a run "losing" to a baseline that loops. Not a success, and not a loss."""
    run = gainer(diff)
    return run is not None and metrics_health.mostly_degenerate(task_health(run, diff.task))


def all_wrong(diff: Difference | None) -> bool:
    """A difference between two runs that answer every item wrong (EM 0 on both sides): a CMRC F1
    or Avg that moves then measures character overlap between wrong answers, not a tax or a gain."""
    if diff is None or diff.task == "drift" or diff.metric in ("em", "exact_match"):
        return False
    ems = [run.metrics.get(diff.task, {}).get("em") for run in (diff.a, diff.b)]
    return all(value is not None and value == 0 for value in ems)


def all_wrong_note(runs: list[Run]) -> str:
    """The legend line for :func:`all_wrong` marks, where some run and its base both score EM 0."""
    tasks = sorted(
        {
            task
            for run in runs
            if run.base is not None
            for task in run.metrics
            if run.metrics[task].get("em") == 0 and run.base.metrics.get(task, {}).get("em") == 0
        }
    )
    if not tasks:
        return ""
    return (
        f"{MARK} also marks a difference on {', '.join(tasks)} between runs whose answers are all wrong ({ALL_WRONG})."
    )


def warning(diff: Difference) -> str:
    """The tooltip of a marked difference."""
    return f"{MARK} {gainer(diff).name}'s {diff.task} {WARNING}"


@dataclass
class HealthRow:
    run: Run
    rates: dict[str, float]  # n and the rates present
    derived: bool

    @property
    def degenerate(self) -> float | None:
        return metrics_health.degenerate_share(self.rates)

    @property
    def mostly_degenerate(self) -> bool:
        return metrics_health.mostly_degenerate(self.rates)


@dataclass
class HealthTable:
    """Every generation task's health rows (bases first), and the rates any of them has."""

    tasks: dict[str, list[HealthRow]] = field(default_factory=dict)
    rates: list[str] = field(default_factory=list)

    def row(self, run: Run, task: str | None) -> HealthRow | None:
        return next((row for row in self.tasks.get(task or "", []) if row.run is run), None)

    @property
    def degenerate(self) -> list[tuple[str, HealthRow]]:
        """(task, row) of every run whose outputs are mostly empty or repetitive."""
        return [(task, row) for task, rows in self.tasks.items() for row in rows if row.mostly_degenerate]

    @property
    def derived(self) -> bool:
        return any(row.derived for rows in self.tasks.values() for row in rows)


def health_table(runs: list[Run], tasks: list[str]) -> HealthTable:
    table = HealthTable()
    for task in tasks:
        rows = [
            HealthRow(run, rates, is_derived(run, task)) for run in all_runs(runs) if (rates := task_health(run, task))
        ]
        if rows:
            table.tasks[task] = rows
    present = {name for rows in table.tasks.values() for row in rows for name in row.rates}
    table.rates = [name for name in RATE_LABELS if name in present]
    return table
