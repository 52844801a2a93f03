"""The tax over training: each metric against the training step, for runs made by ``evaluate --checkpoints``.

Runs whose ``results.json`` records ``checkpoint_step`` form one series per series folder (the
``--output`` of ``evaluate --checkpoints``). Task metrics are plotted as the difference from the
base (so the tax and the gain read alike, 0 = the base), drift as its mean KL and Δ NLL.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from alignment_tax.metrics.headline import headline_metric
from alignment_tax.reports import plots
from alignment_tax.reports.formatting import metric_label, task_title
from alignment_tax.reports.runs import Run


def checkpoint_series(runs: list[Run]) -> dict[str, list[tuple[int, Run]]]:
    """Series folder name → ``(step, run)`` by step, for runs evaluated at a training checkpoint."""
    series: dict[str, list[tuple[int, Run]]] = defaultdict(list)
    for run in runs:
        step = (run.results.get("config") or {}).get("checkpoint_step")
        if isinstance(step, int) and not isinstance(step, bool):
            series[run.path.parent.name].append((step, run))
    return {name: sorted(members, key=lambda pair: pair[0]) for name, members in series.items()}


def _delta(run: Run, task: str, metric: str) -> float:
    value = run.metrics.get(task, {}).get(metric)
    base = run.base.metrics.get(task, {}).get(metric) if run.base is not None else None
    if value is None or base is None:
        return math.nan
    return float(value) - float(base)


def _drift_mean(run: Run, key: str) -> float:
    drift: dict[str, Any] = run.drift or {}
    value = (drift.get(key) or {}).get("mean")
    return float(value) if isinstance(value, (int, float)) else math.nan


def checkpoint_plots(runs: list[Run], tasks: list[str], colors: dict[int, str]) -> list[tuple[str, str, str, str]]:
    """``(name, title, svg, caption)`` per task (and drift) with at least two checkpoints in a series."""
    series = {name: members for name, members in checkpoint_series(runs).items() if len(members) >= 2}
    if not series:
        return []
    result = []
    for task in tasks:
        metric = next(
            (
                headline_metric(task, run.metrics[task])
                for _, members in series.items()
                for _, run in members
                if task in run.metrics
            ),
            None,
        )
        if metric is None:
            continue
        lines = [
            (
                name,
                [float(step) for step, _ in members],
                [_delta(run, task, metric) for _, run in members],
                colors[id(members[-1][1])],
            )
            for name, members in series.items()
        ]
        if all(not math.isfinite(v) for _, _, values, _ in lines for v in values):
            continue
        label = f"Δ {metric_label(metric)} vs base"
        svg = plots.curves(lines, f"{task_title(task)} over training", label)
        result.append(
            (
                f"checkpoints_{task}",
                f"{task_title(task)} over training",
                svg,
                f"{label} of each saved checkpoint (`evaluate --checkpoints`); 0 is the base.",
            )
        )
    for key, label in (("kl", "mean KL to the base"), ("delta_nll", "mean Δ NLL")):
        lines = [
            (
                name,
                [float(step) for step, _ in members],
                [_drift_mean(run, key) for _, run in members],
                colors[id(members[-1][1])],
            )
            for name, members in series.items()
        ]
        if any(math.isfinite(v) for _, _, values, _ in lines for v in values):
            result.append(
                (
                    f"checkpoints_drift_{key}",
                    f"Drift over training: {label}",
                    plots.curves(lines, f"Drift over training: {label}", label),
                    f"{label} on the drift corpus at each saved checkpoint.",
                )
            )
    return result
