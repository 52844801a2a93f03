"""What a command prints on stdout when it ends: a few lines a person reads, or its JSON with ``--json``.

Scripts read the JSON (``--json``); a person reads what ran, the headline numbers, where the files are
and the command to run next. Each task shows its headline metric (:mod:`alignment_tax.metrics.headline`,
the one the report shows) with a 95% interval where lm-eval computed a standard error (the normal
interval, value ± 1.96 se), and the change from the base (candidate − base, as ``results.json`` holds
it). The report has the paired intervals of the changes.
"""

from __future__ import annotations

import json
from pathlib import Path
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


def report_lines(summary: dict[str, Any]) -> list[str]:
    """What ``report`` says: the file it wrote, what is in it, and what it could not compare."""
    runs, plots = summary.get("runs") or [], summary.get("plots") or []
    judged = f", {summary['judgements']} judge files" if summary.get("judgements") else ""
    lines = [
        f"wrote {summary['report']} ({summary['format']}): {len(runs)} runs ({', '.join(runs)}), "
        f"baseline {summary['baseline']}, tasks {', '.join(summary.get('tasks') or [])}{judged}"
    ]
    if plots:
        lines.append(f"  plots: {len(plots)} SVG files in {Path(plots[0]).parent}")
    if summary.get("reference"):
        lines.append(f"  published rows from {summary['reference']}: {len(summary.get('published_beside') or [])}")
    lines += [f"  not compared: {flag}" for flag in summary.get("not_compared") or []]
    return lines


def judge_lines(summary: dict[str, Any], output: str) -> list[str]:
    """What ``judge`` says: A's record against B, its win rate with the interval and the sign test."""
    a, b = Path(summary["run_a"]).name, Path(summary["run_b"]).name
    rate, ci, p = summary.get("win_rate"), summary.get("win_rate_ci"), summary.get("p_value")
    line = (
        f"judged {summary['task']}: {a} (A) against {b} (B) on {summary['n_pairs']} pairs: "
        f"{summary['wins']} A wins, {summary['ties']} ties, {summary['losses']} B wins, {summary['n_invalid']} invalid"
    )
    if isinstance(rate, (int, float)):
        line += f"; A's win rate {100 * rate:.1f}%"
        if ci and all(isinstance(v, (int, float)) for v in ci):
            line += f" (95% CI {100 * ci[0]:.1f}% to {100 * ci[1]:.1f}%)"
        if isinstance(p, (int, float)):
            line += f", sign test p = {p:.3g}"
    lines = [line, f"  written to {output} (each pair's verdicts in {summary.get('records')})"]
    if summary.get("n_pending"):
        lines.append(f"  {summary['n_pending']} pairs pending: rerun to continue")
    return lines + [report_hint(f"{summary['run_a']} {summary['run_b']} --judge {output}")]
