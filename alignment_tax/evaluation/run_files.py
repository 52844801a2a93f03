"""What ``evaluate`` leaves on disk: ``results.json`` (its tasks, health and tax) and ``samples/``,
and the base folder runs share.

The base's results live in ``OUTPUT/../_base/KEY/``, shared by every run beside ``OUTPUT`` that
scores the same base under the same settings. Two such runs started together would both find no
results, both evaluate the base and write the same folder at once; so the base folder is held
while it is looked up, evaluated and written. A second run waits for the first (saying so in one
line) and then reuses what it wrote: what a user who starts two candidates at once expects.

Every file is written whole (:func:`~alignment_tax.paths.write_text_atomically`): a reader, or a
run reusing the base, never sees half a samples file, and a run killed while writing leaves the
previous file as it was.
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from alignment_tax.evaluation import data_parallel
from alignment_tax.evaluation.output_lock import held_by_main
from alignment_tax.metrics.health import HEALTH_RATES
from alignment_tax.paths import write_text_atomically

BASE_RUNS_DIR = "_base"
RESULTS = "results.json"


def tasks_payload(run: Any) -> dict[str, dict[str, float]]:
    return {task: scores.metrics for task, scores in run.scores.items()}


def health_payload(run: Any) -> dict[str, dict[str, float]]:
    """Each generation task's output health (``n`` and rates), kept apart from its metrics."""
    return {task: scores.health for task, scores in run.scores.items() if scores.health is not None}


def compute_tax(
    candidate: dict[str, dict[str, float]], base: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Candidate − base for every metric both have (standard errors and output-health rates excluded)."""
    tax: dict[str, dict[str, float]] = {}
    for task, metrics in candidate.items():
        shared = {
            name: value - base[task][name]
            for name, value in metrics.items()
            if not name.endswith("_stderr") and name not in HEALTH_RATES and name in base.get(task, {})
        }
        if shared:
            tax[task] = shared
    return tax


def base_folder(output: Path, key: str) -> Path:
    return output.resolve().parent / BASE_RUNS_DIR / key


def write_run(folder: Path, payload: dict[str, Any], run: Any) -> None:
    """``samples/TASK.jsonl`` for each task of ``run`` (a RoleRun), then ``results.json`` naming them."""
    samples_dir = folder / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    for task, scores in run.scores.items():
        # The whole text first: an item that fails to serialise must not cost the previous file.
        text = "".join(json.dumps(item, ensure_ascii=False, default=str) + "\n" for item in scores.items)
        write_text_atomically(samples_dir / f"{task}.jsonl", text)
    payload["samples"] = {task: f"samples/{task}.jsonl" for task in run.scores}
    write_text_atomically(folder / RESULTS, json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def previous_results(folder: Path) -> dict[str, Any] | None:
    """The base's ``results.json`` when an earlier run wrote it; read on rank 0 and shared."""
    existing = folder / RESULTS
    # Rank 0 looks for all: it may write the file before a slower rank would look.
    return data_parallel.on_main(
        lambda: json.loads(existing.read_text(encoding="utf-8")) if existing.exists() else None
    )


def held_base(folder: Path, run_name: str) -> AbstractContextManager[None]:
    """Hold the base folder for the block (rank 0 for all processes), waiting while another run holds it."""
    return held_by_main(folder, "evaluate", on_wait=_say_waiting(run_name))


def _say_waiting(run_name: str):
    def say(folder: Path, holder: str) -> None:
        print(
            f"alignment-tax evaluate: {run_name}: waiting for another evaluate ({holder}) to finish the base in "
            f"{folder}, to reuse it",
            file=sys.stderr,
            flush=True,
        )

    return say
