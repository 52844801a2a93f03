"""Checks of a spec's training stages that need more than a key lookup.

* :func:`check_command`: a custom stage's command may use only the placeholders the runner fills,
  and literal braces (``awk '{print $1}'``) must be doubled, as in Python's ``str.format``;
* :func:`stage_order`: the order the stages can run in, each after the stages it uses; a stage
  that uses itself, or stages that use each other, are a cycle and an error when the spec loads.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from alignment_tax.errors import UserError

PLACEHOLDERS = ("output", "model", "adapter", "embedder", "train_data")
# The keys of a stage that name another stage whose output it uses.
STAGE_INPUTS = ("adapter", "embedder")


def check_command(command: str, where: str) -> None:
    """Fail unless ``command`` formats with exactly the runner's placeholders."""
    hint = f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}, and write a literal brace as {{{{ or }}}}"
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(command) if field is not None]
    except ValueError as error:  # a lone { or }
        raise UserError(f"{where}: {error} in {command!r}; {hint}") from None
    for field in fields:
        if field not in PLACEHOLDERS:
            raise UserError(f"{where}: unknown placeholder {{{field}}} in {command!r}; {hint}")


def _inputs(stage: Mapping[str, Any], stages: Mapping[str, Any]) -> list[str]:
    return [stage[key] for key in STAGE_INPUTS if isinstance(stage.get(key), str) and stage[key] in stages]


def _cycle_from(start: str, stages: Mapping[str, Mapping[str, Any]]) -> list[str] | None:
    """A cycle reachable from ``start`` as a path of names (first == last), or None."""
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_path:
            return path[path.index(name) :] + [name]
        if name in done:
            return None
        path.append(name)
        on_path.add(name)
        for needed in _inputs(stages[name], stages):
            cycle = visit(needed)
            if cycle:
                return cycle
        path.pop()
        on_path.discard(name)
        done.add(name)
        return None

    return visit(start)


def stage_order(stages: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The stage names, each after the stages it uses, otherwise in the spec's order."""
    for name in stages:
        cycle = _cycle_from(name, stages)
        if cycle:
            raise UserError(
                f"train: the stages {' → '.join(cycle)} form a dependency cycle (through their "
                f"{' or '.join(STAGE_INPUTS)}); a stage can only use stages that do not need it"
            )
    ordered: list[str] = []

    def place(name: str) -> None:
        if name not in ordered:
            for needed in _inputs(stages[name], stages):
                place(needed)
            ordered.append(name)

    for name in stages:
        place(name)
    return ordered
