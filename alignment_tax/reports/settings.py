"""Each run's effective training settings, read from the ``train_config.json`` beside its adapter.

The study leaves some choices open (β, the loss type, GRPO's warmup, the data split, τ); a report
that compares runs must say what each run actually trained with, so these are shown per run,
with τ as resolved (a calibrated value, not "auto").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignment_tax.reports.runs import Run

TRAIN_CONFIG = "train_config.json"
# (label, section, key): what differs between the methods and what the study leaves open.
SHOWN = (
    ("learning rate", "training", "learning_rate"),
    ("epochs", "training", "num_train_epochs"),
    ("max steps", "training", "max_steps"),
    ("warmup", "training", "warmup_steps"),
    ("scheduler", "training", "lr_scheduler_type"),
    ("LoRA r / α", "lora", ("r", "alpha")),
    ("β (KL)", "training", "beta"),
    ("loss", "training", "loss_type"),
    ("generations", "training", "num_generations"),
    ("completion ≤", "training", "max_completion_length"),
    ("shuffle seed", "data", "shuffle_seed"),
    ("rows skipped / kept", "data", ("skip", "limit")),
    ("reward", "reward", "components"),
)


def train_config(run: Run) -> dict[str, Any] | None:
    """The training record of the run's adapter (beside it, one folder up, or, for a
    ``checkpoints/checkpoint-N`` adapter, the run's own), if there is one."""
    adapter = run.results.get("adapter")
    if not isinstance(adapter, str) or not adapter:
        return None
    for place in (Path(adapter), Path(adapter).parent, Path(adapter).parent.parent):
        path = place / TRAIN_CONFIG
        if path.is_file():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, OSError):
                return None
            return record if isinstance(record, dict) else None
    return None


def _value(config: dict[str, Any], section: str, key: Any) -> str:
    part = config.get(section) or {}
    if isinstance(key, tuple):
        values = [part.get(k) for k in key]
        return " / ".join("—" if v is None else str(v) for v in values) if any(v is not None for v in values) else ""
    value = part.get(key)
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def settings_table(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """Column names and one row per run with a training record: method, then the :data:`SHOWN` settings and τ."""
    rows = []
    for run in runs:
        record = train_config(run)
        if record is None:
            continue
        config = record.get("config") or {}
        resolved = record.get("resolved") or {}
        row = [run.name, str(record.get("method", ""))]
        row += [_value(config, section, key) for _, section, key in SHOWN]
        tau = resolved.get("tau")
        row.append("" if tau is None else f"{tau:.4g}")
        rows.append(row)
    if not rows:
        return [], []
    columns = ["run", "method"] + [label for label, _, _ in SHOWN] + ["τ (resolved)"]
    keep = [i for i in range(len(columns)) if i < 2 or any(row[i] for row in rows)]  # drop columns no run has
    return [columns[i] for i in keep], [[row[i] or "—" for i in keep] for row in rows]
