"""The tasks' prompts and doc dicts, straight from their YAML, without importing lm-eval.

Trainers build training prompts with the same template the harness evaluates with::

    from alignment_tax.data import load_parallel
    from alignment_tax.tasks.prompts import build_doc, render_prompt

    pair = load_parallel("../shared/data/bo_zh_mt/cmilbench_bo_zh.jsonl")[0]
    doc = build_doc("bo_zh_mt", pair)        # {"id", "source", "reference", "source_lang", "target_lang"}
    render_prompt("bo_zh_mt", doc)           # the user turn lm-eval sends (before the chat template)

The Jinja environment is lm-eval's own (``StrictUndefined``, ``keep_trailing_newline=True``,
the ``regex_replace`` filter), so a template renders to the same text in both places.

Doc schemas (every value a str unless said otherwise):

* ``cmrc2018``: ``id``, ``source`` = ``{"passage", "question"}``, ``reference`` = list[str] of
  every reference answer (duplicates kept, as the official scorer keeps them);
* ``bo_zh_mt`` / ``zh_bo_mt``: ``id``, ``source`` (the sentence to translate), ``reference``
  (its translation), ``source_lang``, ``target_lang``;
* ``bo_headline``: ``id``, ``source`` (the Tibetan article), ``reference`` (its headline).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

from alignment_tax.data.headlines import HeadlinePair
from alignment_tax.data.parallel import ParallelPair
from alignment_tax.data.squad import QAItem
from alignment_tax.errors import UserError

TASKS_DIR = Path(__file__).resolve().parent
# task name -> the kind of loader record its docs are built from
TASK_KINDS = {"cmrc2018": "qa", "bo_zh_mt": "mt", "zh_bo_mt": "mt", "bo_headline": "headline"}
OUR_TASKS = tuple(TASK_KINDS)


def _regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    return re.sub(pattern, repl, string, count=count)


# The same settings as lm_eval.utils.env (lm-eval 0.4.13).
_ENV = jinja2.Environment(loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_ENV.filters["regex_replace"] = _regex_replace


class _TaskYamlLoader(yaml.SafeLoader):
    """Reads a task YAML with ``!function x.y`` kept as the string ``"!function x.y"``."""


_TaskYamlLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def check_task(task_name: str) -> str:
    """``task_name`` if it is one of this package's tasks, else a UserError listing them.

    >>> check_task("bo_zh_mt")
    'bo_zh_mt'
    >>> check_task("bo_zh")
    Traceback (most recent call last):
    alignment_tax.errors.UserError: unknown task 'bo_zh'; this package's tasks: cmrc2018, bo_zh_mt, zh_bo_mt, bo_headline
    """
    if task_name not in TASK_KINDS:
        raise UserError(f"unknown task {task_name!r}; this package's tasks: {', '.join(OUR_TASKS)}")
    return task_name


def _read_yaml(path: Path) -> dict[str, Any]:
    """A task YAML with its ``include:`` files merged in as lm-eval merges them.

    Each included file (a name relative to ``path``'s folder) first, then the file's own keys,
    which win; the merge is shallow, so a mapping such as ``metadata`` is replaced whole.
    """
    with path.open(encoding="utf-8") as handle:
        config = yaml.load(handle, Loader=_TaskYamlLoader)  # noqa: S506 - a SafeLoader subclass
    includes = config.pop("include", None)
    if includes is None:
        return config
    merged: dict[str, Any] = {}
    for name in includes if isinstance(includes, list) else [includes]:
        merged.update(_read_yaml(path.parent / name))
    merged.update(config)
    return merged


@functools.cache
def _read_config(task_name: str) -> dict[str, Any]:
    path = TASKS_DIR / f"{task_name}.yaml"
    config = _read_yaml(path)
    if config.get("task") != task_name:  # pragma: no cover - guards the shipped files
        raise RuntimeError(f"{path}: task is {config.get('task')!r}, expected {task_name!r}")
    return config


def task_config(task_name: str) -> dict[str, Any]:
    """The task's YAML as a dict (``!function`` targets as strings); a copy, safe to change."""
    import copy

    return copy.deepcopy(_read_config(check_task(task_name)))


def task_metadata(task_name: str) -> dict[str, Any]:
    """The YAML ``metadata`` block: ``version``, ``task_name``, for MT the direction
    (``source_lang``, ``target_lang``), and for headlines ``target_lang``."""
    return dict(_read_config(check_task(task_name)).get("metadata") or {})


def target_language(task_name: str) -> str | None:
    """The language a task's outputs are written in: its YAML's ``metadata.target_lang``.

    None for ``cmrc2018``, whose answers are spans of the passage (no language check, no
    similarity).

    >>> target_language("bo_zh_mt"), target_language("bo_headline"), target_language("cmrc2018")
    ('zh', 'bo', None)
    """
    return task_metadata(task_name).get("target_lang")


# Task -> the language of its outputs, for each task of ours that has one: BLEU's segmentation,
# the similarity metric and the off-script flag use it. Written once, in the task YAMLs.
TARGET_LANGUAGE: dict[str, str] = {
    name: language for name in OUR_TASKS if (language := target_language(name)) is not None
}


@functools.cache
def _template(task_name: str) -> jinja2.Template:
    return _ENV.from_string(_read_config(check_task(task_name))["doc_to_text"])


def render_prompt(task_name: str, doc: dict[str, Any]) -> str:
    """The task's ``doc_to_text`` rendered for ``doc``: the user turn, before any chat template.

    >>> print(render_prompt("zh_bo_mt", {"source": "你好"}))
    请把下面的中文翻译成藏文。只输出藏文译文，不要输出中文原文、解释或任何其他内容。
    <BLANKLINE>
    中文：你好
    """
    try:
        return _template(task_name).render(**doc)
    except jinja2.UndefinedError as exc:
        message = f"{task_name}: the doc lacks a field the prompt needs ({exc}); build it with build_doc"
        raise UserError(message) from exc


def build_doc(task_name: str, record: QAItem | ParallelPair | HeadlinePair) -> dict[str, Any]:
    """The task's doc dict for one loader record (see the module docstring for the schemas)."""
    kind = TASK_KINDS[check_task(task_name)]
    if kind == "qa" and isinstance(record, QAItem):
        return {
            "id": str(record.id),
            "source": {"passage": record.context, "question": record.question},
            "reference": list(record.answers),
        }
    if kind == "mt" and isinstance(record, ParallelPair):
        meta = task_metadata(task_name)
        expected = (meta["source_lang"], meta["target_lang"])
        if (record.source_lang, record.target_lang) != expected:
            raise UserError(
                f"{task_name} translates {expected[0]}→{expected[1]} but pair {record.id!r} is "
                f"{record.source_lang}→{record.target_lang}"
            )
        return {
            "id": str(record.id),
            "source": record.source,
            "reference": record.target,
            "source_lang": record.source_lang,
            "target_lang": record.target_lang,
        }
    if kind == "headline" and isinstance(record, HeadlinePair):
        return {"id": str(record.id), "source": record.article, "reference": record.headline}
    expected_type = {"qa": QAItem, "mt": ParallelPair, "headline": HeadlinePair}[kind].__name__
    raise TypeError(f"{task_name} docs are built from {expected_type}, got {type(record).__name__}")
