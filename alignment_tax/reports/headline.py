"""The headline tables, in the shape of the reference study's Table 3, and the at-a-glance table.

One section per target task: a row per model (the base, then the runs) with the task metric,
similarity, CMRC Avg and F1 (and any other tax task), and the judge's win %; every run's cell
carries its difference from its base; then one *gap* row per run against the baseline run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alignment_tax.metrics.headline import headline_metric
from alignment_tax.reports.comparisons import Comparator, Difference
from alignment_tax.reports.formatting import (
    PERCENT_METRICS,
    column_label,
    is_target_task,
    metric_label,
    task_title,
)
from alignment_tax.reports.judges import Judgement
from alignment_tax.reports.references import Published
from alignment_tax.reports.runs import Run, all_runs, task_metrics

TAX_TASK = "cmrc2018"


@dataclass
class Column:
    label: str
    task: str | None
    metric: str | None  # None: the judge column
    tip: str = ""

    @property
    def is_judge(self) -> bool:
        return self.metric is None


@dataclass
class JudgeEntry:
    """A run's judge result on a task against one other run."""

    other: str
    pct: float | None  # this run's win %
    gap: float | None = None  # this run's win % − the other's (gap rows)
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    record: tuple[int, int, int] = (0, 0, 0)  # this run's wins, ties and losses: a 0% of all ties is no loss

    @property
    def all_tied(self) -> bool:
        return self.record[1] > 0 and self.record[0] == self.record[2] == 0


@dataclass
class Cell:
    metric: str | None
    value: float | None = None
    diff: Difference | None = None  # a run against its base; a gap row: the run against the baseline
    judge: list[JudgeEntry] = field(default_factory=list)
    published: Published | None = None  # a published row's cell: the paper's number, never in a diff


@dataclass
class Row:
    label: str
    role: str  # base | run | baseline | gap | published (a reference's numbers beside its run)
    run: Run
    cells: list[Cell]


@dataclass
class Section:
    task: str | None
    title: str
    columns: list[Column]
    rows: list[Row]
    n_items: int | None = None


def tax_columns(tasks: list[str], runs: list[Run]) -> list[Column]:
    columns = []
    if any(TAX_TASK in run.metrics for run in runs):
        for metric in ("average", "f1"):
            columns.append(Column(column_label(TAX_TASK, metric), TAX_TASK, metric, "CMRC 2018, 0–100: the tax"))
    for task in tasks:
        if task == TAX_TASK or is_target_task(task):
            continue
        metric = headline_metric(task, task_metrics(runs, task))
        if metric:
            columns.append(Column(column_label(task, metric), task, metric, f"{task}: a tax task"))
    return columns


def _task_columns(task: str, runs: list[Run]) -> list[Column]:
    metrics = list(dict.fromkeys(name for run in runs for name in run.metrics.get(task, {})))
    primary = headline_metric(task, metrics)
    columns = [Column(metric_label(primary), task, primary, f"{task} task metric")] if primary else []
    if "similarity" in metrics and primary != "similarity":
        columns.append(Column("Similarity", task, "similarity", "embedding cosine to the reference"))
    return columns


def _judge_entries(
    judgements: list[Judgement], task: str | None, run: Run, against: Run | None = None
) -> list[JudgeEntry]:
    entries = []
    for judgement in judgements:
        side = judgement.side_of(run)
        if judgement.task != task or side is None:
            continue
        other = judgement.other(run)
        if against is not None and other is not against:
            continue
        counts = (judgement.wins, judgement.ties, judgement.losses)
        entry = JudgeEntry(
            other.name, judgement.pct(side), p_value=judgement.p_value, record=counts if side == "a" else counts[::-1]
        )
        if against is not None:
            gap = judgement.gap(run)
            if gap is not None:
                entry.gap, entry.ci = gap
        entries.append(entry)
    return entries


def _cell(column: Column, run: Run, comparator: Comparator, judgements: list[Judgement], task: str | None) -> Cell:
    if column.is_judge:
        return Cell(None, judge=_judge_entries(judgements, task, run))
    cell = Cell(column.metric, run.metrics.get(column.task, {}).get(column.metric))
    if not run.is_base and run.base is not None and cell.value is not None:
        cell.diff = comparator.metric(column.task, column.metric, run, run.base)
    return cell


def _gap_cell(
    column: Column, run: Run, baseline: Run, comparator: Comparator, judgements: list[Judgement], task: str | None
) -> Cell:
    if column.is_judge:
        return Cell(None, judge=_judge_entries(judgements, task, run, against=baseline))
    return Cell(column.metric, diff=comparator.metric(column.task, column.metric, run, baseline))


def _n_items(task: str | None, runs: list[Run]) -> int | None:
    for run in runs:
        rows = run.samples(task) if task and task in run.metrics else None
        if rows is not None:
            return len(rows)
    return None


def sections(
    runs: list[Run], baseline: Run, tasks: list[str], comparator: Comparator, judgements: list[Judgement]
) -> list[Section]:
    """One headline section per target task (or one tax-only section when there is none)."""
    shown = all_runs(runs)
    tax = tax_columns(tasks, shown)
    targets = [task for task in tasks if is_target_task(task)] or [None]
    result = []
    for task in targets:
        columns = (_task_columns(task, shown) if task else []) + tax
        if any(judgement.task == task for judgement in judgements):
            columns.append(
                Column(
                    "LLM-Judge Win (%)",
                    task,
                    None,
                    "share of valid pairs this model wins against the other judged model, with its wins, ties and losses",
                )
            )
        rows = []
        for run in shown:
            if (
                task is not None
                and task not in run.metrics
                and not any(c.task in run.metrics for c in columns if c.task)
            ):
                continue
            role = "base" if run.is_base else "baseline" if run is baseline and len(runs) > 1 else "run"
            label = f"{run.name} (baseline)" if role == "baseline" else run.name
            rows.append(Row(label, role, run, [_cell(column, run, comparator, judgements, task) for column in columns]))
        for run in runs:
            if run is baseline:
                continue
            cells = [_gap_cell(column, run, baseline, comparator, judgements, task) for column in columns]
            rows.append(Row(f"Gap ({run.name} vs {baseline.name})", "gap", run, cells))
        title = task_title(task) if task else "General capability (the tax)"
        result.append(Section(task, title, columns, rows, _n_items(task, shown)))
    return result


@dataclass
class Glance:
    """Every run's differences from its base on the numbers that decide: gains, tax, drift."""

    columns: list[tuple[str, str | None, str]]  # (label, task, metric); task "drift" for drift
    rows: list[tuple[Run, list[Difference | None]]]


def _unit(metric: str) -> str:
    """A header's unit: a Δ of +0.05 reads differently on a 0–100 score and in nats per token."""
    return ", 0–100" if metric in PERCENT_METRICS else ""


def glance(runs: list[Run], tasks: list[str], comparator: Comparator) -> Glance:
    columns: list[tuple[str, str | None, str]] = []
    for task in tasks:
        if is_target_task(task):
            metric = headline_metric(task, task_metrics(runs, task))
            if metric:
                columns.append((f"{task} {metric_label(metric)}{_unit(metric)}", task, metric))
    columns += [
        (column.label + _unit(column.metric), column.task, column.metric)
        for column in tax_columns(tasks, runs)
        if column.metric != "f1"
    ]
    if any(run.drift is not None for run in runs):
        columns += [("ΔNLL (drift), nats/token", "drift", "delta_nll"), ("KL to base, nats/token", "drift", "kl")]
    rows = []
    for run in runs:
        cells: list[Difference | None] = []
        for _, task, metric in columns:
            if task == "drift":
                cells.append(comparator.drift(metric, run, None) if run.drift is not None else None)
            elif run.base is not None and task in run.metrics and metric in run.metrics[task]:
                cells.append(comparator.metric(task, metric, run, run.base))
            else:
                cells.append(None)
        rows.append((run, cells))
    return Glance(columns, rows)
