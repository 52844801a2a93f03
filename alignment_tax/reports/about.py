"""What a report says about itself: which models these are, what Δ means, where the runs live.

* :func:`banner`: when a model is tiny or an adapter was trained for a handful of steps, one
  factual sentence naming them (parameters, random or pretrained weights, steps trained), so a
  reader does not take pipeline-check numbers for evidence about the methods.
* :data:`TAX_DEFINITION`: the sign convention, stated once in each renderer's introduction.
* :func:`output_root` and :func:`shown_path`: every path in the report is shown relative to one
  folder, the deepest one holding every run given (for a single run, the folder holding it).

The facts come from ``results.json``'s ``weights`` (written by ``evaluate``); a run written before
that key existed has them read from its model and adapter folders, when those are still there, and
an adapter without a training record counts the steps of the training log beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment_tax.provenance import weights as read_weights
from alignment_tax.reports.runs import Run, all_runs

# A model under 10M parameters is a toy whatever its weights (the smallest Qwen3 has 0.6B); an
# adapter under 100 optimiser steps has barely moved from its initialisation.
TINY_PARAMETERS = 10_000_000
FEW_STEPS = 100
TAX_DEFINITION = (
    "Δ = candidate − base (a run minus its base model; a gap row: a run minus the baseline). On the task "
    "metrics higher is better, so a negative Δ on a general benchmark such as CMRC is a tax and a positive Δ "
    "on a target task a gain. Drift (NLL, ΔNLL, KL to the base) is lower-is-better: a positive Δ there means "
    "the run moved away from the base."
)
CLOSING = "Their numbers show the pipeline working, not the methods' merit."


@dataclass
class Segment:
    """Part of the banner: plain text, or a name the renderers set as code."""

    text: str
    code: bool = False


def weights(run: Run) -> dict[str, Any]:
    """The run's ``weights`` as recorded, else as its folders say now (read once per run)."""
    recorded = run.results.get("weights")
    if isinstance(recorded, dict):
        return recorded
    model, adapter = _text(run.results.get("model")), _text(run.results.get("adapter"))
    return run.remember("weights", lambda: read_weights(model, adapter))


def adapter_steps(run: Run) -> int | None:
    """Optimiser steps the run's adapter was trained: its training record's, else its training log's last step
    (a run stopped before its record was finished has only the log)."""
    steps = _integer(_facts(weights(run).get("adapter")).get("steps"))
    if steps is None and run.train_log:
        steps = int(max(row["step"] for row in run.train_log))
    return steps


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _facts(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def count(number: float) -> str:
    """``0.33M``, ``4.02B``: a parameter or token count, to two decimals."""
    if number >= 1e9:
        return f"{number / 1e9:.2f}B"
    return f"{number / 1e6:.2f}M"


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _model_phrase(facts: dict[str, Any]) -> str | None:
    """``has 0.33M parameters and random weights``; None when nothing is known."""
    tiny = _facts(facts.get("tiny"))
    parameters = _integer(facts.get("parameters"))
    if parameters is None:
        parameters = _integer(tiny.get("parameters"))
    parts = [f"{count(parameters)} parameters"] if parameters is not None else []
    if tiny:
        pretrained = _facts(tiny.get("pretrained"))
        if "pretrained" not in tiny:
            parts.append("random weights")
        else:
            steps = _integer(pretrained.get("steps"))
            tokens = _integer(pretrained.get("tokens", pretrained.get("tokens_seen")))
            trained = "weights pretrained" + (f" for {steps:,} steps" if steps is not None else "")
            parts.append(
                trained
                + (f" on {count(tokens)} tokens" if tokens is not None else "")
                + (f" ({pretrained['seen']})" if isinstance(pretrained.get("seen"), str) else "")
            )
    return "has " + " and ".join(parts) if parts else None


def _is_tiny(facts: dict[str, Any]) -> bool:
    parameters = _integer(facts.get("parameters"))
    return bool(facts.get("tiny")) or (parameters is not None and parameters < TINY_PARAMETERS)


def _steps_phrase(steps: list[int]) -> str:
    adapters = "adapter" if len(steps) == 1 else "adapters"
    low, high = min(steps), max(steps)
    span = f"{low}" if low == high else f"{low}–{high}"
    unit = "step" if high == 1 else "steps"
    each = " each" if low == high and len(steps) > 1 else ""
    return f"{adapters} trained {span} {unit}{each}"


def banner(runs: list[Run]) -> list[Segment]:
    """The banner's text, or ``[]`` when no model is tiny and no adapter was trained for few steps."""
    models: dict[str, dict[str, Any]] = {}
    bases: set[str] = set()
    for run in all_runs(runs):
        name = _text(run.results.get("model"))
        if name is None:
            continue
        models.setdefault(name, _facts(weights(run).get("model")))
        if run.is_base or _text(run.results.get("adapter")):
            bases.add(name)
    steps = [step for run in runs if (step := adapter_steps(run)) is not None]
    tiny = any(_is_tiny(facts) for facts in models.values())
    if not tiny and not any(step < FEW_STEPS for step in steps):
        return []
    segments = [Segment("These models are tiny: " if tiny else "These models were trained for a handful of steps: ")]
    described = [(name, phrase) for name, facts in models.items() if (phrase := _model_phrase(facts)) is not None]
    for index, (name, phrase) in enumerate(described):
        if index:
            segments.append(Segment("; "))
        segments += [
            Segment("base " if name in bases else "model "),
            Segment(_short(name), code=True),
            Segment(f" {phrase}"),
        ]
    if steps:
        segments.append(Segment(("; " if described else "") + _steps_phrase(steps)))
    segments.append(Segment(f". {CLOSING}"))
    return segments


def _short(name: str) -> str:
    """A local model by its folder's name (``tiny-lm``), a hub model by its id."""
    path = Path(name)
    return path.name if path.is_absolute() or (os.sep in name and path.exists()) else name


def output_root(runs: list[Run]) -> Path:
    """The folder every path is shown relative to: the deepest one holding every run given."""
    folders = [run.path.resolve() for run in runs]
    common = Path(os.path.commonpath(folders))
    return common.parent if common in folders else common


def shown_path(value: Any, root: Path) -> str | None:
    """A path as the report shows it: relative to ``root`` when under it, else absolute; a hub id as it is."""
    text = _text(str(value) if isinstance(value, Path) else value)
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() and not path.exists():
        return text  # a hub id, or a relative path that no longer resolves: shown as recorded
    resolved = path.resolve()
    try:
        return resolved.relative_to(root).as_posix() or "."
    except ValueError:
        return str(resolved)
