"""``evaluate --checkpoints RUN_DIR``: every saved checkpoint of a LoRA training run, one evaluation each.

A training run of this package (``alignment-tax train``) saves ``RUN_DIR/checkpoints/checkpoint-N``
folders, each holding the adapter at step N (beside the optimizer's state, which is not read).
Each is evaluated as ``evaluate --adapter`` would, under ``OUTPUT/step_<N>/`` with
``checkpoint_step`` in its ``results.json``; the base is evaluated once, under ``OUTPUT/_base/``,
and reused for every step. The final adapter (``RUN_DIR/adapter``), when there is one, is
evaluated too, as ``OUTPUT/final/``. The report then plots each metric and drift against the step.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.models.saved_files import adapter_problem, checkpoint_problem

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def saved_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every complete adapter checkpoint under ``run_dir``, by step.

    Complete is training's rule (``models.saved_files``: ``trainer_state.json``, written last, reads
    back and no file is cut short) and a usable adapter; any other checkpoint is skipped with one line.
    """
    root = Path(run_dir)
    folder = root / "checkpoints" if (root / "checkpoints").is_dir() else root
    if not folder.is_dir():
        raise UserError(f"--checkpoints: {run_dir} is not a folder")
    found = []
    for child in sorted(folder.iterdir()):
        match = _CHECKPOINT.match(child.name)
        if not match or not child.is_dir():
            continue
        problem = checkpoint_problem(child) or adapter_problem(child)
        if problem is None:
            found.append((int(match.group(1)), child))
        else:
            _skip(child, problem)
    if not found:
        raise UserError(f"--checkpoints: no checkpoint-N folder with an adapter under {folder}")
    found.sort()
    # checkpoint-2 and checkpoint-02 are both step 2: one would overwrite the other's step_2 run.
    for (step, first), (next_step, second) in zip(found, found[1:]):
        if step == next_step:
            names = sorted((first.name, second.name))
            raise UserError(
                f"--checkpoints: {names[0]} and {names[1]} in {folder} are both step {step}"
                f" (one evaluation, step_{step}): keep one of them"
            )
    return found


def evaluate_checkpoints(options: Any, run_dir: str | Path) -> dict[str, Any]:
    """Evaluate each checkpoint (and the final adapter) of ``run_dir``; ``options.output`` is the series' folder."""
    from alignment_tax.evaluation.sweep import evaluate_series

    if options.adapter:
        raise UserError("--checkpoints evaluates the run's own adapters: leave out --adapter")
    runs = [(f"step_{step}", path, {"checkpoint_step": step}) for step, path in saved_checkpoints(run_dir)]
    final = Path(run_dir) / "adapter"
    if final.is_dir():
        problem = adapter_problem(final)
        if problem is None:
            runs.append(("final", final, {"checkpoint_step": None}))
        else:
            _skip(final, problem)
    return {"run": str(run_dir), "output": str(options.output), "steps": evaluate_series(options, runs)}


def _skip(folder: Path, problem: str) -> None:
    print(f"alignment-tax evaluate: warning: skipping {folder}: {problem}", file=sys.stderr, flush=True)
