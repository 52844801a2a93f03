"""Progress bars that say which stage of which run they measure.

A study runs the same libraries many times over (the base, each adapter, drift, training), and
their bars say "Running generate_until requests" or nothing at all, so a user watching a demo
cannot tell whose generations are running. Here every bar reads ``STAGE RUN: TASKS WHAT``:
``evaluate grpo: bo_zh_mt generation``, ``evaluate grpo: cmrc2018 prompts``, ``drift grpo``,
``train grpo``.

lm-eval creates its bars inside its model classes and task objects and takes no name for them,
so :func:`lm_eval_bars` swaps the ``tqdm`` those modules imported for one that renames each bar,
and notes which task is building its prompts; both are put back when the block ends.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

# lm-eval's own names for its bars, and what each measures.
_LM_EVAL_STAGES = {
    "Running generate_until requests": "generation",
    "Running loglikelihood requests": "log-likelihood",
    "Requesting API": "generation",
    "Tokenizing inputs": "tokenizing",
    "Checking cached requests": "cache check",
}
_PROMPTS = "prompts"  # the bar lm-eval leaves unnamed: each task building its requests
# The lm-eval modules that make bars; one not imported yet (vLLM's, the API models') is left alone.
_LM_EVAL_MODULES = (
    "lm_eval.api.task",
    "lm_eval.api.model",
    "lm_eval.models.huggingface",
    "lm_eval.models.vllm_causallms",
    "lm_eval.models.api_models",
)


class _Current:
    label: str | None = None  # "evaluate grpo"
    tasks: tuple[str, ...] = ()  # the tasks whose requests are running now


_current = _Current()


def bar_name(what: str | None) -> str:
    """The name a bar gets inside :func:`lm_eval_bars`: ``LABEL: TASKS WHAT``."""
    stage = _LM_EVAL_STAGES.get(what or "", what or _PROMPTS)
    tasks = ", ".join(_current.tasks)
    return f"{_current.label}: {tasks} {stage}" if tasks else f"{_current.label}: {stage}"


def _renaming(base: type) -> type:
    class Named(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if len(args) > 1:  # tqdm(iterable, desc, ...)
                args = (args[0], bar_name(args[1]), *args[2:])
            else:
                kwargs["desc"] = bar_name(kwargs.get("desc"))
            super().__init__(*args, **kwargs)

    Named.__name__ = Named.__qualname__ = f"Named{base.__name__}"
    return Named


@contextlib.contextmanager
def working_on(tasks: Iterable[str]) -> Iterator[None]:
    """Name the tasks whose requests the bars in this block count."""
    previous, _current.tasks = _current.tasks, tuple(sorted({task for task in tasks if task}))
    try:
        yield
    finally:
        _current.tasks = previous


def request_tasks(requests: Iterable[Any]) -> list[str]:
    """The task names lm-eval's ``Instance`` objects carry."""
    return [getattr(request, "task_name", None) or "" for request in requests]


@contextlib.contextmanager
def lm_eval_bars(label: str) -> Iterator[None]:
    """Inside the block, lm-eval's bars are named ``label: ...``."""
    from lm_eval.api.task import Task

    swapped: list[tuple[Any, str, Any]] = []

    def swap(owner: Any, name: str, value: Any) -> None:
        swapped.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    for module_name in _LM_EVAL_MODULES:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(getattr(module, "tqdm", None), type):
            swap(module, "tqdm", _renaming(module.tqdm))
    build = Task.build_all_requests

    def build_all_requests(self: Any, *args: Any, **kwargs: Any) -> Any:
        with working_on([getattr(self.config, "task", None) or ""]):
            return build(self, *args, **kwargs)

    swap(Task, "build_all_requests", build_all_requests)
    previous, _current.label = _current.label, label
    try:
        yield
    finally:
        _current.label = previous
        for owner, name, value in reversed(swapped):
            setattr(owner, name, value)


def end_open_bars() -> None:
    """Close every bar still open, so that the line printed next starts a line of its own.

    An error or Ctrl-C leaves the running bar's line unfinished (a bar ends its line only when
    closed); the CLI's one-line message would be appended to it, after the bar's text.
    """
    std = sys.modules.get("tqdm.std")  # no tqdm imported: no bar to end
    if std is None:
        return
    for bar in sorted(list(std.tqdm._instances), key=lambda bar: -getattr(bar, "pos", 0)):
        with contextlib.suppress(Exception):  # a bar whose stream is gone: nothing to end
            bar.close()
