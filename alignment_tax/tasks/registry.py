"""Registering this package's lm-eval tasks and checking task names before any model loads.

::

    from alignment_tax.tasks.registry import resolve_tasks
    manager, names = resolve_tasks(["cmrc2018", "bo_zh_mt"], {"data_dir": "../shared/data"})
    lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=manager, apply_chat_template=True)

Only our names: the manager indexes this folder alone and starts at once. Any other name (a
built-in such as ``cmmlu`` or ``belebele_bod_Tibt``) needs lm-eval's full index (about 30 s on 2
cores), so a name that cannot be in it is rejected first, in about a second
(:mod:`alignment_tax.tasks.names`).
The metadata keys are ``data_dir`` and ``data`` (see :mod:`alignment_tax.tasks.loading`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alignment_tax.errors import UserError
from alignment_tax.tasks.loading import RESERVED_METADATA, check_data_option
from alignment_tax.tasks.names import check_task_names, unknown_task
from alignment_tax.tasks.prompts import OUR_TASKS, TASKS_DIR

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

__all__ = ["OUR_TASKS", "TASKS_DIR", "check_metadata", "resolve_tasks", "task_manager"]


def _plain(value: Any) -> Any:
    """Paths as strings, so the metadata lm-eval copies into its results stays JSON."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metadata for :func:`task_manager`, checked and JSON-plain.

    ``data`` must map our task names to sources; the keys the YAMLs set themselves
    (``task_name``, ``source_lang``, ``target_lang``) may not be overridden. Other keys pass
    through to every task (lm-eval's own tasks read some, e.g. ``max_seq_lengths``).

    >>> check_metadata({"data_dir": Path("shared/data"), "max_seq_lengths": (2048,)})
    {'data_dir': 'shared/data', 'max_seq_lengths': [2048]}
    >>> check_metadata({"target_lang": "en"})
    Traceback (most recent call last):
    alignment_tax.errors.UserError: task metadata may not set 'target_lang': each task's YAML sets it (the data keys are 'data_dir' and 'data')
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise UserError(f"task metadata should be a dict, got {type(metadata).__name__}")
    clashing = [key for key in RESERVED_METADATA if key in metadata]
    if clashing:
        raise UserError(
            f"task metadata may not set {', '.join(map(repr, clashing))}: each task's YAML sets it "
            "(the data keys are 'data_dir' and 'data')"
        )
    plain = _plain(dict(metadata))
    if "data" in plain:
        plain["data"] = check_data_option(plain["data"])
    if plain.get("data_dir") is not None and not str(plain["data_dir"]).strip():
        raise UserError("metadata 'data_dir' is empty; give a folder or leave it out")
    return plain


class _DropCustomDatasetAdvice(logging.Filter):
    """Drops lm-eval's warning, on every load of a task with a ``custom_dataset`` hook, that
    "Custom kwargs can be passed to `--metadata`": advice, two lines each, for our tasks only."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Custom kwargs can be passed to `--metadata`" in message and message.split(":")[0] in OUR_TASKS)


_ADVICE_FILTER = _DropCustomDatasetAdvice()


def task_manager(metadata: Mapping[str, Any] | None = None, include_defaults: bool = False) -> TaskManager:
    """An lm-eval ``TaskManager`` that knows this package's tasks (and lm-eval's with ``include_defaults``)."""
    from lm_eval.tasks import TaskManager

    task_logger = logging.getLogger("lm_eval.api.task")
    if _ADVICE_FILTER not in task_logger.filters:
        task_logger.addFilter(_ADVICE_FILTER)

    metadata = check_metadata(metadata)
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=include_defaults, metadata=metadata)


def resolve_tasks(names: Iterable[str], metadata: Mapping[str, Any] | None = None) -> tuple[TaskManager, list[str]]:
    """A manager able to load every name, and the names (stripped, duplicates dropped, order kept).

    Builds lm-eval's full index only when some name is not ours; a name no index knows is a
    :class:`UserError` listing this package's tasks.
    """
    if isinstance(names, str):
        names = [names]
    wanted = list(dict.fromkeys(str(name).strip() for name in names))
    if not wanted or any(not name for name in wanted):
        raise UserError(f"no task named; this package's tasks: {', '.join(OUR_TASKS)}")
    check_task_names(wanted)  # a typo fails here, not after the slow index
    everything = any(name not in OUR_TASKS for name in wanted)
    metadata = check_metadata(metadata)  # before the slow index, so a bad option fails at once
    manager = task_manager(metadata, include_defaults=everything)
    known = set(manager.all_tasks)
    for name in wanted:
        if name not in known:
            raise unknown_task(name, known)
    return manager, wanted
