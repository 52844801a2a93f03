"""Task names checked in about a second, without lm-eval's task index.

lm-eval's ``TaskManager`` parses every one of its ~14,000 task YAMLs (about 30 s on 2 cores)
before it can say that a name is unknown, so a typo in ``--tasks`` used to cost half a minute.
Every name that index holds is the value of a ``task``, ``group`` or ``tag`` key in one of
those files (or a file they include, whatever its suffix), so a name that stands as a whole
token nowhere in their text cannot be in the index: that is decided by reading the files as
text, without importing lm-eval. A name that does occur is left to the index itself, which
``resolve_tasks`` still consults before loading anything.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import re
from collections.abc import Iterable
from pathlib import Path

from alignment_tax.errors import UserError
from alignment_tax.tasks.prompts import OUR_TASKS

BUILTIN_EXAMPLES = "e.g. cmmlu, belebele_zho_Hans"
# Characters that end a YAML scalar in the files' plain style (keys, flow lists, quotes, comments).
_SEPARATORS = frozenset(" \t\r\n'\"[],:{}#")
# Files of lm-eval's task tree that hold no task configuration.
_NOT_CONFIG = (".py", ".pyc", ".md")
# `task: name`, `group: name`, `tag: name` or `tag: [a, b]`, and the `- name` items of a `tag:` list.
_KEY_LINE = re.compile(r"^(task|group|tag)[ \t]*:[ \t]*(.*)$")
_LIST_ITEM = re.compile(r"^[ \t]+-[ \t]*([^\s#]+)")


def lm_eval_tasks_dir() -> Path | None:
    """lm-eval's ``tasks`` folder, found without importing lm-eval (None if it is not installed)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "tasks"
    return folder if folder.is_dir() else None


@functools.lru_cache(maxsize=1)
def _config_text() -> str:
    """Every configuration file of lm-eval's task tree, joined by newlines."""
    root = lm_eval_tasks_dir()
    if root is None:
        return ""
    parts: list[bytes] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
        for name in sorted(files):
            if not name.endswith(_NOT_CONFIG):
                with open(os.path.join(folder, name), "rb") as handle:
                    parts.append(handle.read())
    return b"\n".join(parts).decode("utf-8", errors="replace")


def _occurs_as_token(text: str, name: str) -> bool:
    start = text.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or text[start - 1] in _SEPARATORS) and (end == len(text) or text[end] in _SEPARATORS):
            return True
        start = text.find(name, start + 1)
    return False


def may_be_builtin(name: str) -> bool:
    """False only when ``name`` cannot be in lm-eval's task index; True leaves it to the index."""
    return bool(name) and _occurs_as_token(_config_text(), name)


@functools.lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    """The names lm-eval's task YAMLs declare (for suggestions; the index itself is authoritative)."""
    names: set[str] = set()
    in_tag_list = False
    for line in _config_text().splitlines():
        if in_tag_list:
            item = _LIST_ITEM.match(line)
            if item:
                names.add(item.group(1).strip("'\""))
                continue
            in_tag_list = False
        key = _KEY_LINE.match(line)
        if key is None:
            continue
        value = key.group(2).split("#")[0].strip()
        if value.startswith("["):
            if key.group(1) == "tag":
                names.update(part.strip(" '\"") for part in value.strip("[]").split(",") if part.strip(" '\""))
        elif value:
            names.add(value.strip("'\""))
        else:
            in_tag_list = key.group(1) == "tag"
    return tuple(sorted(names - {"null", "~"}))


def unknown_task(name: str, known: Iterable[str]) -> UserError:
    """One line naming this package's tasks and the closest known names."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.75)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UserError(
        f"unknown task {name!r}; this package's tasks: {', '.join(OUR_TASKS)}; "
        f"or any lm-eval task ({BUILTIN_EXAMPLES}){hint}"
    )


def check_task_names(names: Iterable[str], also: Iterable[str] = ()) -> None:
    """Fail on the first name that is neither ours, in ``also``, nor possibly lm-eval's."""
    extra = set(also)
    for name in names:
        if name in OUR_TASKS or name in extra or may_be_builtin(name):
            continue
        raise unknown_task(name, (*OUR_TASKS, *extra, *builtin_names()))
