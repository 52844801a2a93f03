"""What a command prints on stdout when it ends: a few lines a person reads, or its JSON with ``--json``.

Scripts read the JSON (``--json``); a person reads what ran, the headline numbers, where the files are
and the command to run next. Each task shows its headline metric (:mod:`alignment_tax.metrics.headline`,
the one the report shows) with a 95% interval where lm-eval computed a standard error (the normal
interval, value ± 1.96 se), and the change from the base (candidate − base, as ``results.json`` holds
it). The report has the paired intervals of the changes.
"""

from __future__ import annotations

import json
from typing import Any

from alignment_tax.metrics.headline import headline_metric

Z95 = 1.959963984540054  # the normal distribution's 97.5th percentile


def emit(payload: Any, as_json: bool, summary: list[str]) -> None:
    """Print ``payload`` as JSON when asked for, else the ``summary`` lines."""
    print(json.dumps(payload, ensure_ascii=False, indent=2, default=str) if as_json else "\n".join(summary))


def report_hint(paths: str) -> str:
    return f"next: alignment-tax report {paths} --out report"


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _headline(task: str, metrics: dict[str, Any], changes: dict[str, Any] | None) -> str | None:
    name = headline_metric(task, [name for name, value in metrics.items() if isinstance(value, (int, float))])
    if name is None:
        return None
    value = metrics[name]
    text = f"{task} {name} {_number(value)}"
    stderr = metrics.get(f"{name}_stderr")
    if isinstance(stderr, (int, float)):
        text += f" (95% CI {_number(value - Z95 * stderr)} to {_number(value + Z95 * stderr)})"
    change = (changes or {}).get(task, {}).get(name)
    if isinstance(change, (int, float)):
        text += f", vs base {change:+.3g}"
    return text


def scores_line(tasks: dict[str, Any] | None, tax: dict[str, Any] | None, drift: dict[str, Any] | None) -> str:
    """``cmrc2018 average 61.7 (95% CI 60.2 to 63.2), vs base -1.2; ...; drift: mean KL 0.0175, mean Δ NLL
    +0.012 nats/token`` from a run's results (``tax``: its changes from the base)."""
    parts = [text for task, metrics in (tasks or {}).items() if (text := _headline(task, metrics or {}, tax))]
    kl = ((drift or {}).get("kl") or {}).get("mean")
    delta = ((drift or {}).get("delta_nll") or {}).get("mean")
    if isinstance(kl, (int, float)):
        shift = f", mean Δ NLL {delta:+.3g}" if isinstance(delta, (int, float)) else ""
        parts.append(f"drift: mean KL {_number(kl)}{shift} nats/token")
    return "; ".join(parts) or "no scores"


def series_lines(runs: dict[str, Any]) -> list[str]:
    """One line per run of a sweep or checkpoint series: its label, headline scores and results file."""
    return [
        f"  {label}: {scores_line(run.get('tasks'), run.get('tax'), None)} ({run['results']})"
        for label, run in runs.items()
    ]


def experiment_lines(summary: dict[str, Any]) -> list[str]:
    """What ``run`` and ``demo`` say: each evaluation's headline scores (read from its results.json), the reports."""
    from pathlib import Path

    lines = [
        f"ran {summary['output']}: {len(summary.get('stages') or {})} stages, "
        f"{len(summary.get('evaluations') or {})} evaluations, {len(summary.get('judgements') or [])} judgements"
    ]
    for name, folder in (summary.get("evaluations") or {}).items():
        path = Path(folder) / "results.json"
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a summary is no place to fail a finished run
            lines.append(f"  {name}: {folder}")
            continue
        lines.append(
            f"  {name}: {scores_line(results.get('tasks'), results.get('tax'), results.get('drift'))} ({path})"
        )
    reports = summary.get("reports") or []
    lines.append(f"reports: {', '.join(map(str, reports))}" if reports else "no report (no evaluations)")
    return lines
