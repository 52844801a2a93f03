"""Loading and checking the runs a report compares: ``evaluate`` output folders and their bases.

A run folder holds ``results.json`` (aggregates, ``tax``, ``drift``, provenance), per-item
records in ``samples/<task>.jsonl`` and, with the drift task, ``drift_tokens.npz`` and
``drift_texts.jsonl``. Its base model's own run is the folder ``results.json``'s
``base.results`` names (or ``<run>/../_base/<key>/`` when the tree was moved). Every problem
with these files is a :class:`~alignment_tax.errors.UserError` naming the file at fault.
"""

from __future__ import annotations

import json
import math
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from alignment_tax.data.readers import iter_jsonl
from alignment_tax.data.utf8 import not_utf8_error
from alignment_tax.errors import UserError
from alignment_tax.metrics.health import HEALTH_RATES

RESULTS = "results.json"
BASE_RUNS_DIR = "_base"
TRAIN_LOG = "train_log.jsonl"


def read_json(path: Path, what: str) -> Any:
    """A JSON file, or a one-line error naming it and what it should have been."""
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise not_utf8_error(path, f"{what} {path} (corrupt?)", error) from error
    except json.JSONDecodeError as error:
        raise UserError(
            f"{what} {path} is corrupt: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from error


def read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    """The objects of a JSONL file; a malformed line is an error naming ``what``, the file and line."""
    return [row for _, row in iter_jsonl(path, what)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _is_metric(name: str, value: Any) -> bool:
    # Output-health rates written beside the metrics (truncated_rate) are not scores to compare.
    return not name.endswith("_stderr") and name not in HEALTH_RATES and _number(value) is not None


def _check_results(path: Path, results: Any) -> dict[str, dict[str, float]]:
    """``tasks`` of a results.json as {task: {metric: value}} (stderrs and health rates dropped), checked."""
    if not isinstance(results, dict):
        raise UserError(f"results file {path} is corrupt: expected a JSON object")
    tasks = results.get("tasks")
    if not isinstance(tasks, dict) or not all(isinstance(metrics, dict) for metrics in tasks.values()):
        raise UserError(
            f"results file {path} has no `tasks` of metric values (not written by `alignment-tax evaluate`?)"
        )
    for task, metrics in tasks.items():
        for name, value in metrics.items():
            if not name.endswith("_stderr") and _number(value) is None:
                _warn_not_a_number(path, f"tasks.{task}.{name}", value)
    return {
        task: {name: float(value) for name, value in metrics.items() if _is_metric(name, value)}
        for task, metrics in tasks.items()
    }


def _warn_not_a_number(path: Path, field: str, value: Any) -> None:
    """One line for a value the report cannot show: its cell reads "—", and this says why."""
    if isinstance(value, float):
        what = "NaN" if math.isnan(value) else "infinite"
    elif isinstance(value, str):
        what = f"the string {value[:40]!r}"
    elif value is None:
        what = "null"
    else:
        what = f"a {type(value).__name__}"
    print(
        f"alignment-tax report: warning: {path}: {field} is {what}, not a number; the report shows — for it",
        file=sys.stderr,
        flush=True,
    )


@dataclass(eq=False)
class Run:
    """One evaluated model: a run given on the command line, or the base one of them was scored against."""

    name: str
    path: Path
    results: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    is_base: bool = False
    base: Run | None = None
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # what the report derives from the run, once

    @property
    def results_file(self) -> Path:
        return self.path / RESULTS

    @property
    def tasks(self) -> list[str]:
        return list(self.metrics)

    def remember(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, computed once per run and ``key`` (kept in :attr:`cache`)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def samples(self, task: str) -> list[dict[str, Any]] | None:
        """The per-item records of ``task`` (None when the run has none for it)."""
        return self.remember(("samples", task), lambda: self._load_samples(task))

    def _load_samples(self, task: str) -> list[dict[str, Any]] | None:
        listed = self.results.get("samples")
        listed = listed.get(task) if isinstance(listed, dict) else None
        path = self.path / (listed or f"samples/{task}.jsonl")
        if not path.is_file():
            if listed:
                raise UserError(f"per-item file {path} (listed in {self.results_file}) is missing")
            return None
        rows = read_jsonl(path, "per-item file")
        seen: set[str] = set()
        for number, row in enumerate(rows, 1):
            if "id" not in row:
                raise UserError(f"per-item file {path} is corrupt: record {number} has no id")
            row["id"] = str(row["id"])
            if row["id"] in seen:
                raise UserError(f"per-item file {path} is corrupt: duplicate id {row['id']!r}")
            seen.add(row["id"])
        return rows

    @cached_property
    def drift(self) -> dict[str, Any] | None:
        drift = self.results.get("drift")
        return drift if isinstance(drift, dict) and isinstance(drift.get("kl"), dict) else None

    @cached_property
    def drift_tokens(self) -> dict[str, np.ndarray] | None:
        """Per-token ``nll``, ``base_nll``, ``kl`` and ``text_index`` (None without drift)."""
        if self.drift is None:
            return None
        path = self.path / str((self.drift.get("files") or {}).get("tokens", "drift_tokens.npz"))
        if not path.is_file():
            raise UserError(f"drift file {path} (listed in {self.results_file}) is missing")
        try:
            with np.load(path) as arrays:
                tokens = {
                    name: np.asarray(arrays[name], dtype=np.float64) for name in ("nll", "base_nll", "kl", "text_index")
                }
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            raise UserError(f"drift file {path} is corrupt: {error}") from error
        if len({array.shape for array in tokens.values()}) != 1:
            raise UserError(f"drift file {path} is corrupt: its arrays differ in length")
        return tokens

    @cached_property
    def drift_corpus(self) -> str | None:
        corpus = (self.drift or {}).get("corpus") or {}
        return corpus.get("sha256") if isinstance(corpus, dict) else None

    @cached_property
    def train_log(self) -> list[dict[str, Any]] | None:
        """The training log beside the run's adapter (``train_log.jsonl``), if there is one."""
        adapter = self.results.get("adapter")
        places = [self.path]
        if isinstance(adapter, str) and adapter:
            adapter_path = Path(adapter)
            places += [adapter_path, adapter_path.parent]
        for place in places:
            log = place / TRAIN_LOG
            if log.is_file():
                rows = read_jsonl(log, "training log")
                return [row for row in rows if _number(row.get("step")) is not None] or None
        return None


def _base_folder(run_path: Path, base: dict[str, Any]) -> Path:
    recorded = Path(str(base.get("results", "")))
    if recorded.name == RESULTS and recorded.is_file():
        return recorded.parent
    key = base.get("key")
    moved = run_path.parent / BASE_RUNS_DIR / str(key)  # the tree was moved: the base beside the run
    if key and (moved / RESULTS).is_file():
        return moved
    raise UserError(
        f"the base's results file {recorded} (named in {run_path / RESULTS}) is missing"
        + (f", and {moved / RESULTS} is not there either" if key else "")
    )


def load_run(path: str | Path, name: str) -> Run:
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"run folder not found: {path}")
    if not folder.is_dir():
        raise UserError(f"{path} is not a folder (give the `evaluate --output` folder of each run)")
    results_file = folder / RESULTS
    if not results_file.is_file():
        raise UserError(f"results file missing: {results_file} (not an `alignment-tax evaluate` output folder?)")
    results = read_json(results_file, "results file")
    return Run(name=name, path=folder, results=results, metrics=_check_results(results_file, results))


def _names(paths: list[Path]) -> list[str]:
    """Folder names, with as many parent folders as it takes to tell them apart."""
    for depth in range(1, 8):
        names = ["/".join(path.resolve().parts[-depth:]) for path in paths]
        if len(set(names)) == len(names):
            return names
    return [str(path) for path in paths]


def load_runs(paths: list[str | Path]) -> list[Run]:
    """The runs, each with its base run attached (runs sharing a base share one object)."""
    if not paths:
        raise UserError("give at least one run folder")
    folders = [Path(path) for path in paths]
    resolved = [folder.resolve() for folder in folders]
    for index, folder in enumerate(resolved):
        if folder in resolved[:index]:
            raise UserError(f"run {paths[index]} is given twice")
    runs = [load_run(folder, name) for folder, name in zip(folders, _names(folders))]
    bases: dict[Path, Run] = {}
    for run in runs:
        base = run.results.get("base")
        if not isinstance(base, dict):
            continue
        folder = _base_folder(run.path, base).resolve()
        if folder not in bases:
            loaded = load_run(folder, "base model" if any(other.name == "base" for other in runs) else "base")
            loaded.is_base = True
            bases[folder] = loaded
        run.base = bases[folder]
    if len(bases) > 1:
        models = [base.results.get("model") for base in bases.values()]
        for folder, base in bases.items():
            model = str(base.results.get("model") or "")
            short = Path(model).name or model
            base.name = (
                f"base {short}" if models.count(base.results.get("model")) == 1 else f"base {short} ({folder.name[:8]})"
            )
    return runs


def is_named(run: Run, name: str) -> bool:
    """Whether a flag's ``name`` means ``run``: its name in the report, its folder name or its path."""
    return name in (run.name, run.path.name, str(run.path)) or Path(name).resolve() == run.path.resolve()


def find_run(runs: list[Run], name: str, flag: str = "--baseline") -> Run:
    """The run ``flag`` names (see :func:`is_named`)."""
    for run in runs:
        if is_named(run, name):
            return run
    raise UserError(f"{flag} {name!r} matches no run; the runs are: {', '.join(run.name for run in runs)}")


def all_runs(runs: list[Run]) -> list[Run]:
    """The bases first (each once), then the runs in the order given."""
    return list(dict.fromkeys(run.base for run in runs if run.base is not None)) + list(runs)


def task_order(runs: list[Run]) -> list[str]:
    """Every task of any run, the first run's first."""
    return list(dict.fromkeys(task for run in runs for task in run.metrics))


def task_metrics(runs: list[Run], task: str) -> dict[str, float]:
    """The metrics of ``task`` in the first run that has it ({} when none has)."""
    return next((run.metrics[task] for run in runs if task in run.metrics), {})


def _share(run: Run, other: Run) -> bool:
    """Whether two runs have anything to compare: a task with an item in common, or drift on the same texts."""
    for task in run.metrics:
        if task not in other.metrics:
            continue
        mine, theirs = run.samples(task), other.samples(task)
        if mine is None or theirs is None or {row["id"] for row in mine} & {row["id"] for row in theirs}:
            return True
    return run.drift is not None and other.drift is not None and run.drift_corpus == other.drift_corpus


def check_overlap(runs: list[Run]) -> None:
    """Each run must share something with another run; else the report would compare nothing."""
    if len(runs) < 2:
        return
    for run in runs:
        if not any(_share(run, other) for other in runs if other is not run):
            listing = "; ".join(f"{other.name}: {', '.join(other.tasks) or 'none'}" for other in runs)
            raise UserError(
                f"run {run.name} has nothing in common with the other runs: no task with an item in common, "
                f"and no drift on the same texts (tasks: {listing})"
            )
