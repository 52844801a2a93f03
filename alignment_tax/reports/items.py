"""The item browser's data: each task's items across runs, side by side, with their flips.

A *flip* compares a run with its own base on one item. Where the task has a binary per-item
metric (CMRC EM, accuracy) it is right/wrong: ``lost`` (the base right, the run wrong) or
``gained`` (the reverse). Otherwise (BLEU, ROUGE, ...) it is ``worse``/``better`` on the task
metric. Items with any flip come first when a task has more than :data:`MAX_ITEMS` items.
Each output also carries its health flags (empty, repetitive, off-script, truncated; see
:mod:`alignment_tax.reports.health`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignment_tax.metrics.headline import headline_metric
from alignment_tax.reports.comparisons import as_number, is_binary
from alignment_tax.reports.health import row_flags
from alignment_tax.reports.judges import Judgement
from alignment_tax.reports.runs import Run, all_runs, task_metrics

MAX_ITEMS = 1000
BINARY_PREFERENCE = ("em", "acc", "exact_match")
SKIP_FIELDS = frozenset({"id", "source", "input", "output", "reference", "doc", "target", "arguments"})
EPSILON = 1e-9
STATUSES = ("lost", "gained", "worse", "better")  # in the order the counts are shown


@dataclass
class Output:
    text: Any
    metrics: dict[str, float]
    status: str | None = None  # one of STATUSES, or None (the same, or no base)
    flags: list[str] = field(default_factory=list)  # health flags raised: empty, repetitive, off_script, truncated

    @property
    def degenerate(self) -> bool:
        return "empty" in self.flags or "repetitive" in self.flags


@dataclass
class Item:
    id: str
    source: Any
    reference: Any
    outputs: dict[int, Output]  # column index -> output
    judge: list[str] = field(default_factory=list)  # "a ≻ b", "tie", per judgement on this task

    @property
    def statuses(self) -> set[str]:
        return {output.status for output in self.outputs.values() if output.status}


@dataclass
class TaskItems:
    task: str
    columns: list[Run]  # bases first, then runs
    flip_metric: str | None
    binary: bool
    items: list[Item]
    n_total: int
    counts: dict[str, dict[str, int]]  # run name -> status -> count
    notes: list[str]


def flip_rule(task: str, runs: list[Run]) -> tuple[str | None, bool]:
    """The metric a flip is judged on, and whether it is right/wrong (binary)."""
    rows = [row for run in runs for row in (run.samples(task) or [])]
    primary = headline_metric(task, task_metrics(runs, task))
    for name in (*BINARY_PREFERENCE, primary):
        values = [as_number(row.get(name.split(",")[0])) for row in rows] if name else []
        if values and None not in values and is_binary(np.asarray(values)):
            return name, True
    return primary, False


def _status(run_value: float | None, base_value: float | None, binary: bool, top: float) -> str | None:
    if run_value is None or base_value is None:
        return None
    if binary:
        if base_value >= top and run_value < top:
            return "lost"
        if run_value >= top and base_value < top:
            return "gained"
        return None
    if run_value < base_value - EPSILON:
        return "worse"
    if run_value > base_value + EPSILON:
        return "better"
    return None


def _judge_label(judgement: Judgement, outcome: str) -> str:
    if outcome == "a":
        return f"{judgement.a.name} ≻ {judgement.b.name}"
    if outcome == "b":
        return f"{judgement.b.name} ≻ {judgement.a.name}"
    return f"{judgement.a.name} vs {judgement.b.name}: {outcome}"


def task_items(task: str, runs: list[Run], judgements: list[Judgement], max_items: int = MAX_ITEMS) -> TaskItems | None:
    columns = [run for run in all_runs(runs) if run.samples(task) is not None]
    if not columns:
        return None
    metric, binary = flip_rule(task, columns)
    field_name = metric.split(",")[0] if metric else None
    by_run = [{row["id"]: row for row in run.samples(task)} for run in columns]
    # Each run's flips are against its base's records, where the base is a column too.
    base_rows = [
        by_run[columns.index(run.base)] if field_name and not run.is_base and run.base in columns else None
        for run in columns
    ]
    # A binary metric is right at its top value: 1, or 100 for a metric on 0–100.
    values = [as_number(row.get(field_name)) for rows in by_run for row in rows.values()] if field_name else []
    top = 100.0 if any(value is not None and value > 1.0 for value in values) else 1.0
    notes = [
        f"{run.name} was scored on different items ({len(rows)}); its cells are empty where it lacks an item"
        for run, rows in zip(columns, by_run)
        if set(rows) != set(by_run[0])
    ]
    items = []
    counts = {run.name: Counter() for run in columns if not run.is_base}
    for item_id in dict.fromkeys(item_id for rows in by_run for item_id in rows):
        first = next(rows[item_id] for rows in by_run if item_id in rows)
        outputs = {}
        for index, (run, rows, base) in enumerate(zip(columns, by_run, base_rows)):
            row = rows.get(item_id)
            if row is None:
                continue
            metrics = {
                key: value
                for key, value in row.items()
                if key not in SKIP_FIELDS and as_number(value) is not None and not isinstance(value, bool)
            }
            status = None
            if base is not None and item_id in base:
                status = _status(as_number(row.get(field_name)), as_number(base[item_id].get(field_name)), binary, top)
                if status:
                    counts[run.name][status] += 1
            outputs[index] = Output(row.get("output"), metrics, status, row_flags(row, task))
        judged = [
            _judge_label(judgement, judgement.outcomes[item_id])
            for judgement in judgements
            if judgement.task == task and item_id in judgement.outcomes
        ]
        items.append(Item(item_id, first.get("source", first.get("input")), first.get("reference"), outputs, judged))
    n_total = len(items)
    if n_total > max_items:
        keep = {id(item) for item in sorted(items, key=lambda item: not item.statuses)[:max_items]}  # stable
        items = [item for item in items if id(item) in keep]
        notes.append(f"showing {len(items)} of {n_total} items: every item with a flip first, then the rest in order")
    counts = {name: {status: found[status] for status in STATUSES if found[status]} for name, found in counts.items()}
    return TaskItems(task, columns, metric, binary, items, n_total, counts, notes)
