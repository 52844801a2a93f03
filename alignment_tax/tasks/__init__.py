"""This package's lm-eval tasks: ``cmrc2018``, ``bo_zh_mt``, ``zh_bo_mt`` and ``bo_headline``.

The task YAMLs and their ``hooks.py`` live in this folder (:data:`TASKS_DIR`). Build a manager
with :func:`~alignment_tax.tasks.registry.task_manager` or check names with
:func:`~alignment_tax.tasks.registry.resolve_tasks`; render a task's prompt outside lm-eval
(training) with :func:`~alignment_tax.tasks.prompts.render_prompt`. Importing this package does
not import lm-eval.
"""

from alignment_tax.tasks.prompts import OUR_TASKS, TASKS_DIR, build_doc, render_prompt, task_config

__all__ = ["OUR_TASKS", "TASKS_DIR", "build_doc", "render_prompt", "resolve_tasks", "task_config", "task_manager"]


def __getattr__(name: str):
    # registry imports lm-eval lazily anyway; keep `import alignment_tax.tasks` cheap.
    if name in ("resolve_tasks", "task_manager"):
        from alignment_tax.tasks import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
