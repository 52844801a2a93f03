"""One model through lm-eval: the package's tasks and any built-in task, in one call."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alignment_tax.data.hashing import records_sha256
from alignment_tax.data.hub import dataset_failure, hub_or_cache, why_only_the_cache
from alignment_tax.errors import UserError
from alignment_tax.evaluation import data_parallel
from alignment_tax.evaluation.task_results import (
    TARGET_LANGUAGE,
    TaskScores,
    score_other_task,
    score_own_task,
)
from alignment_tax.metrics.translation import signatures_for


@dataclass
class RoleRun:
    scores: dict[str, TaskScores]
    generation: dict[str, Any] = field(default_factory=dict)
    signatures: dict[str, dict[str, str]] = field(default_factory=dict)
    lm_eval_config: dict[str, Any] = field(default_factory=dict)


def _git_commit_hash() -> str | None:
    """lm-eval's ``get_git_commit_hash``, with git's stderr discarded.

    lm-eval records the working directory's commit in every result; outside a git checkout its
    ``git describe`` printed "fatal: not a git repository" to the user's terminal on every run.
    """
    from lm_eval.loggers.utils import get_commit_from_path

    try:
        return subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL).strip().decode()
    except (subprocess.CalledProcessError, OSError):  # not a checkout, or git is not installed
        return get_commit_from_path(os.getcwd())


def _quiet_lm_eval() -> None:
    import lm_eval.evaluator

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    # It warns that a model object (not a name) was passed: that is how this harness works.
    logging.getLogger("lm_eval.models.huggingface").setLevel(logging.ERROR)
    lm_eval.evaluator.get_git_commit_hash = _git_commit_hash  # simple_evaluate's only caller of it


def _task_whose_download_failed(error: BaseException) -> Any | None:
    """The lm-eval task (built-in: not a ``custom_dataset`` hook) whose dataset load raised ``error``.

    lm-eval loads a task's dataset inside the task's constructor, so the traceback is the one
    place that says which task and which dataset failed. None when the error came from elsewhere.
    """
    from lm_eval.api.task import Task

    failed, frames = None, error.__traceback__
    while frames is not None:
        owner = frames.tb_frame.f_locals.get("self")
        if frames.tb_frame.f_code.co_name == "download" and isinstance(owner, Task):
            failed = owner
        frames = frames.tb_next
    config = getattr(failed, "config", None)
    # Our tasks' hooks raise UserError for bad data; anything else from them is a bug to show.
    if config is None or callable(getattr(config, "custom_dataset", None)):
        return None
    return failed


def _dataset_unavailable(task: Any, error: BaseException) -> UserError:
    name = getattr(task.config, "task", None) or type(task).__name__
    dataset = dataset_failure(str(task.config.dataset_path), task.config.dataset_name, error)
    return UserError(f"task {name}: its dataset {dataset}")


def load_tasks(task_names: list[str], task_manager: Any) -> dict[str, Any]:
    """``{name: Task}`` for every leaf task, datasets loaded; a dataset that does not load is one line.

    Built-in tasks fetch their data from the hub: without it (offline, or the hub unreachable)
    they use the cache or fail at once, naming the task and dataset, instead of retrying.
    """
    _quiet_lm_eval()
    try:
        with hub_or_cache():
            # TaskManager.load expands groups and tags into their leaf tasks.
            return dict(task_manager.load(list(task_names))["tasks"])
    except UserError as error:
        raise _with_local_data_hint(error) from error
    except Exception as error:
        task = _task_whose_download_failed(error)
        if task is None:
            raise
        raise _with_local_data_hint(_dataset_unavailable(task, error)) from error


LOCAL_DATA_HINT = (
    "; without the hub, evaluate reads local data: --data TASK=PATH, --data-dir DIR, or --samples "
    "(the bundled samples, a smoke test)"
)


def _with_local_data_hint(error: UserError) -> UserError:
    """The hub's error alone leaves an offline user at a dead end: name the flags that need no hub."""
    if why_only_the_cache() is None or "hugging face" not in str(error).lower():
        return error
    return UserError(f"{error}{LOCAL_DATA_HINT}")


def task_data_hashes(tasks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each task, the hash and size of the documents it evaluates (before ``--limit``), and how
    many of them repeat an earlier one's id or input (``duplicates``), said in one line when any do."""
    hashes = {}
    for name, task in tasks.items():
        docs = list(task.eval_docs)
        duplicates = data_duplicates(task, docs)
        hashes[name] = {"sha256": records_sha256(docs), "n_docs": len(docs), "duplicates": duplicates}
        if any(duplicates.values()) and data_parallel.is_main():  # once, not once per process
            print(
                f"alignment-tax evaluate: warning: {name}: {duplicates['inputs']} of its {len(docs)} documents "
                f"repeat an earlier one's input and {duplicates['ids']} an earlier one's id; each copy counts as "
                "another item (n overstated, intervals too narrow): deduplicate the data",
                file=sys.stderr,
                flush=True,
            )
    return hashes


def data_duplicates(task: Any, docs: list[Any]) -> dict[str, int]:
    """``{"ids": n, "inputs": n}``: documents whose id, or whose input, an earlier document already had.

    The input is what the model is shown (``doc_to_text``; with the choices for a multiple-choice
    task): two documents with one input get one answer, so they are one item, not two.
    """
    ids = [str(doc["id"]) for doc in docs if isinstance(doc, Mapping) and doc.get("id") is not None]
    choices = getattr(task, "OUTPUT_TYPE", None) == "multiple_choice"
    inputs = [repr((task.doc_to_text(doc), task.doc_to_choice(doc) if choices else None)) for doc in docs]
    return {"ids": len(ids) - len(set(ids)), "inputs": len(inputs) - len(set(inputs))}


def run_role(lm: Any, task_names: list[str], task_manager: Any, options: Any, encoder: Any) -> RoleRun:
    """Evaluate one lm-eval model (one engine role) on every task."""
    from lm_eval import simple_evaluate

    if not task_names:
        return RoleRun(scores={})
    _quiet_lm_eval()
    from alignment_tax.tasks.registry import OUR_TASKS

    # lm-eval loads each task's dataset again: the same way as the check before the model loaded.
    with hub_or_cache():
        raw = simple_evaluate(
            model=lm,
            tasks=task_names,
            task_manager=task_manager,
            limit=options.limit,
            log_samples=True,
            apply_chat_template=True,
            bootstrap_iters=options.bootstrap_iters,
            random_seed=options.seed,
            numpy_random_seed=options.seed,
            torch_random_seed=options.seed,
            fewshot_random_seed=options.seed,
        )
    if raw is None or not data_parallel.is_main():
        # lm-eval returns results where LOCAL_RANK is 0 only. Another data-parallel rank's part was
        # its share of the model calls; rank 0, which scores and writes, has every response.
        return RoleRun(scores={})
    samples = raw.get("samples", {})
    run = RoleRun(scores={}, lm_eval_config=_plain_config(raw.get("config", {})))
    truncated = _truncation_lookup(lm)
    for task, task_result in raw["results"].items():
        task_samples = samples.get(task, [])
        if task in OUR_TASKS:
            run.scores[task] = score_own_task(task, task_result, task_samples, encoder, options.seed, truncated)
        else:
            run.scores[task] = score_other_task(task_result, task_samples, truncated)
        task_config = raw.get("configs", {}).get(task, {})
        if "generation_kwargs" in task_config:
            run.generation[task] = task_config["generation_kwargs"]
        if task in TARGET_LANGUAGE and "bleu" in run.scores[task].metrics:
            run.signatures[task] = signatures_for(TARGET_LANGUAGE[task])
    return run


def _truncation_lookup(lm: Any) -> Any:
    """``sample → bool | None``: whether its generation stopped at the cap, as the cache recorded."""
    cache = getattr(lm, "generation_cache", None)
    if cache is None:
        return None

    def truncated(sample: dict[str, Any]) -> bool | None:
        arguments = sample.get("arguments") or []
        if len(arguments) != 1 or not isinstance(arguments[0], tuple) or len(arguments[0]) != 2:
            return None  # not one generate_until request (loglikelihood tasks send several)
        if not isinstance(arguments[0][1], dict):
            return None
        return cache.truncated(arguments[0])

    return truncated


def _plain_config(config: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "batch_size",
        "batch_sizes",
        "device",
        "limit",
        "bootstrap_iters",
        "random_seed",
        "numpy_seed",
        "torch_seed",
        "fewshot_seed",
    )
    return {key: config[key] for key in keep if key in config}
