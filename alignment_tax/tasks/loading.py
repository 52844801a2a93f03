"""Where each task's documents come from: the ``custom_dataset`` hook's logic.

lm-eval calls the hook with the task's metadata (the YAML's ``metadata`` block merged with the
``metadata`` given to ``TaskManager``). The keys a caller sets:

* ``data_dir``: a folder laid out like ``../shared/data`` (see :class:`~alignment_tax.data.DataDir`):
  ``cmrc2018`` reads ``cmrc2018/cmrc2018_dev.json``; ``bo_zh_mt`` and ``zh_bo_mt`` read
  ``bo_zh_mt/cmilbench_bo_zh.jsonl`` (columns ``bo``, ``zh``); ``bo_headline`` reads
  ``bo_text/tibetanqa_title_passage.jsonl`` (``context`` = article, ``title`` = headline).
* ``data``: ``{task name: source}`` overriding one task's data, where ``source`` is a path
  (relative paths resolve against the working directory) or hub id, or a dict with
  ``path`` (required) and any of :data:`OVERRIDE_KEYS` for that task's kind:

  - every task: ``split`` (hub ids and dataset folders; default: the task's hub split, or
    ``test``), ``config`` (hub config name);
  - MT: ``source_column`` / ``target_column`` (dotted names read nested dicts, e.g.
    ``translation.bo``), or ``source_config`` + ``target_config`` (+ ``text_column``, default
    ``text``) to pair two single-language configs row by row, as FLORES+ is laid out;
  - headlines: ``article_column`` / ``headline_column``.

Precedence per task: ``data[task]`` > ``data_dir`` > the hub default (CMRC: ``hfl/cmrc2018``
validation; MT: FLORES+ ``bod_Tibt``/``cmn_Hans`` devtest; headlines: ``KEVVVV/CMHG`` test).
Every problem is a one-line :class:`~alignment_tax.errors.UserError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alignment_tax.data import (
    CMHG_HUB,
    CMRC_HUB,
    FLORES_CONFIGS,
    FLORES_HUB,
    DataDir,
    load_flores_pairs,
    load_headlines,
    load_parallel,
    load_squad,
)
from alignment_tax.errors import UserError
from alignment_tax.tasks.prompts import OUR_TASKS, TASK_KINDS, build_doc, check_task, task_metadata

COMMON_KEYS = ("path", "split", "config")
OVERRIDE_KEYS = {
    "qa": COMMON_KEYS,
    "mt": COMMON_KEYS + ("source_column", "target_column", "source_config", "target_config", "text_column"),
    "headline": COMMON_KEYS + ("article_column", "headline_column"),
}
# DataDir layout name per kind
LAYOUT_NAMES = {"qa": "cmrc_dev", "mt": "mt_test", "headline": "headlines"}
# metadata keys the task YAMLs set; a caller's metadata must not override them
RESERVED_METADATA = ("task_name", "source_lang", "target_lang")


def check_data_option(data: Any) -> dict[str, Any]:
    """The ``data`` metadata as a dict whose keys are this package's tasks.

    >>> check_data_option({"bo_zh_mt": "pairs.jsonl"})
    {'bo_zh_mt': 'pairs.jsonl'}
    >>> check_data_option({"cmrc": "dev.json"})
    Traceback (most recent call last):
    alignment_tax.errors.UserError: data given for unknown task 'cmrc'; this package's tasks: cmrc2018, bo_zh_mt, zh_bo_mt, bo_headline
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise UserError(f"metadata 'data' should map task names to a path or hub id, got {type(data).__name__}")
    for name in data:
        if name not in TASK_KINDS:
            raise UserError(f"data given for unknown task {name!r}; this package's tasks: {', '.join(OUR_TASKS)}")
    return dict(data)


def _override_spec(task_name: str, source: Any) -> dict[str, Any]:
    kind = TASK_KINDS[task_name]
    if isinstance(source, str):
        source = {"path": source}
    if not isinstance(source, Mapping):
        raise UserError(f"data[{task_name!r}] should be a path, a hub id or a dict with 'path', got {source!r}")
    unknown = [key for key in source if key not in OVERRIDE_KEYS[kind]]
    if unknown:
        raise UserError(
            f"data[{task_name!r}]: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(OVERRIDE_KEYS[kind])}"
        )
    if not str(source.get("path") or "").strip():
        raise UserError(f"data[{task_name!r}] has no 'path' (a file, a dataset folder or a hub id)")
    return dict(source)


def _load_override(task_name: str, spec: dict[str, Any], source_lang: str, target_lang: str) -> list:
    kind = TASK_KINDS[task_name]
    path, config = str(spec["path"]), spec.get("config")
    if kind == "qa":
        return load_squad(path, split=spec.get("split", CMRC_HUB.split), config=config)
    if kind == "headline":
        columns = spec.get("article_column"), spec.get("headline_column")
        return load_headlines(path, *columns, split=spec.get("split", "test"), config=config)
    if "source_config" in spec or "target_config" in spec:
        if "source_config" not in spec or "target_config" not in spec:
            raise UserError(f"data[{task_name!r}]: give both 'source_config' and 'target_config', or neither")
        return load_flores_pairs(
            spec["source_config"],
            spec["target_config"],
            split=spec.get("split", FLORES_HUB.split),
            hub_id=path,
            column=spec.get("text_column", "text"),
            source_lang=source_lang,
            target_lang=target_lang,
        )
    return load_parallel(
        path,
        source_lang,
        target_lang,
        spec.get("source_column"),
        spec.get("target_column"),
        split=spec.get("split", "test"),
        config=config,
    )


def _load_default(task_name: str, data_dir: Any, source_lang: str, target_lang: str) -> list:
    kind = TASK_KINDS[task_name]
    if data_dir is not None:
        path = DataDir(data_dir).require(LAYOUT_NAMES[kind])
        if kind == "qa":
            return load_squad(path)
        if kind == "mt":
            return load_parallel(path, source_lang, target_lang)
        return load_headlines(path)
    try:
        if kind == "qa":
            return load_squad(CMRC_HUB.id, split=CMRC_HUB.split, config=CMRC_HUB.config)
        if kind == "mt":
            return load_flores_pairs(FLORES_CONFIGS[source_lang], FLORES_CONFIGS[target_lang], split=FLORES_HUB.split)
        return load_headlines(CMHG_HUB.id, split=CMHG_HUB.split, config=CMHG_HUB.config)
    except UserError as exc:
        hint = f"{task_name}: no data_dir or data[{task_name!r}] given, so its hub default was tried"
        raise UserError(f"{hint}: {exc}") from exc


def load_task_records(task_name: str, metadata: Mapping[str, Any] | None = None) -> list:
    """The loader records (QAItem / ParallelPair / HeadlinePair) for ``task_name``.

    ``metadata`` holds ``data_dir`` and/or ``data`` as described above; without either, the hub.
    """
    metadata = metadata or {}
    # The direction is the YAML's (the same values the hook receives in its metadata).
    yaml_metadata = task_metadata(task_name)
    source_lang, target_lang = yaml_metadata.get("source_lang"), yaml_metadata.get("target_lang")
    data = check_data_option(metadata.get("data"))
    if task_name in data:
        return _load_override(task_name, _override_spec(task_name, data[task_name]), source_lang, target_lang)
    return _load_default(task_name, metadata.get("data_dir"), source_lang, target_lang)


def load_task_docs(task_name: str, metadata: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The task's doc dicts (see :mod:`alignment_tax.tasks.prompts` for their schema).

    ``metadata["lang_tolerance"]`` (``evaluate --lang-tolerance``) rides on every doc, so the
    scoring hook, which sees only the doc, relaxes the language-consistency rule the same way.
    """
    docs = [build_doc(task_name, record) for record in load_task_records(task_name, metadata)]
    tolerance = (metadata or {}).get("lang_tolerance")
    if tolerance:
        for doc in docs:
            doc["lang_tolerance"] = str(tolerance)
    return docs


def load_docs(**metadata: Any):
    """The ``custom_dataset`` hook: ``DatasetDict({"test": Dataset of docs})`` for the YAML's task."""
    import datasets

    task_name = metadata.get("task_name")
    if task_name is None:
        raise UserError("the task's YAML metadata lacks 'task_name' (this hook serves alignment_tax's tasks only)")
    docs = load_task_docs(check_task(task_name), metadata)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
