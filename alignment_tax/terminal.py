"""What a command prints on stdout when it ends: a few lines a person reads, or its JSON with ``--json``.

Scripts read the JSON (``--json``); a person reads what ran, the headline numbers, where the files are
and the command to run next. Numbers are the ones ``results.json`` holds: a metric with its standard
error where lm-eval computed one (``se``), the tax as candidate − base; nothing is derived here.
"""

from __future__ import annotations

import json
from typing import Any

# The first metric of each of the package's tasks is its headline; another task shows its first metric.
_HEADLINE = {"cmrc2018": "f1", "bo_zh_mt": "chrf", "zh_bo_mt": "chrf", "bo_headline": "rouge_l"}


def emit(payload: Any, as_json: bool, summary: list[str]) -> None:
    """Print ``payload`` as JSON when asked for, else the ``summary`` lines."""
    print(json.dumps(payload, ensure_ascii=False, indent=2, default=str) if as_json else "\n".join(summary))


def report_hint(paths: str) -> str:
    return f"next: alignment-tax report {paths} --out report"


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def _headline(task: str, metrics: dict[str, Any], tax: dict[str, Any] | None) -> str | None:
    names = [name for name in metrics if not name.endswith("_stderr") and isinstance(metrics[name], (int, float))]
    name = _HEADLINE.get(task) if _HEADLINE.get(task) in names else (names[0] if names else None)
    if name is None:
        return None
    text = f"{task} {name} {_number(metrics[name])}"
    stderr = metrics.get(f"{name}_stderr")
    if isinstance(stderr, (int, float)):
        text += f" (se {_number(stderr)})"
    change = (tax or {}).get(task, {}).get(name)
    if isinstance(change, (int, float)):
        text += f", tax {change:+.3g}"
    return text


def scores_line(tasks: dict[str, Any] | None, tax: dict[str, Any] | None, drift: dict[str, Any] | None) -> str:
    """``cmrc2018 f1 67.1 (se 0.5), tax -1.2; ...; drift: mean KL 0.0175 nats/token`` from a run's results."""
    parts = [text for task, metrics in (tasks or {}).items() if (text := _headline(task, metrics or {}, tax))]
    kl = ((drift or {}).get("kl") or {}).get("mean")
    if isinstance(kl, (int, float)):
        parts.append(f"drift: mean KL {_number(kl)} nats/token")
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
