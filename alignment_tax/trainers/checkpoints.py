"""Which ``checkpoint-N`` folder a run resumes from: the newest *complete* one.

A run killed while the Trainer writes a checkpoint (or a disk that fills up during the save)
leaves a folder that transformers would pick as the newest and then fail to load, on every later
run. What "complete" means is ``models.saved_files``' rule, which ``evaluate --checkpoints`` uses too.

Incomplete folders are renamed ``incomplete-checkpoint-N``: neither ``get_last_checkpoint`` nor the
Trainer's rotation (which globs ``checkpoint-*``) sees them again, and nothing is deleted.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from alignment_tax.models.saved_files import checkpoint_problem

INCOMPLETE_PREFIX = "incomplete-"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Choice:
    """The checkpoint to resume from (None: start from step 0) and the incomplete ones set aside."""

    checkpoint: Path | None
    incomplete: list[Path]
    moved_to: list[Path]


def is_complete(folder: Path) -> bool:
    """``trainer_state.json`` (written last) reads back, and no weight or state file is cut short."""
    return checkpoint_problem(folder) is None


def _numbered(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _set_aside(checkpoint: Path) -> Path:
    """Rename to ``incomplete-checkpoint-N`` (``…-2``, ``…-3`` when an earlier one is there already)."""
    target = checkpoint.with_name(INCOMPLETE_PREFIX + checkpoint.name)
    count = 1
    while target.exists():
        count += 1
        target = checkpoint.with_name(f"{INCOMPLETE_PREFIX}{checkpoint.name}-{count}")
    checkpoint.rename(target)
    return target


def choose_checkpoint(folder: Path, move_aside: bool = True) -> Choice:
    """The newest complete checkpoint under ``folder``; incomplete ones newer than it are set aside."""
    if not folder.is_dir():
        return Choice(None, [], [])
    incomplete: list[Path] = []
    chosen = None
    for _, path in reversed(_numbered(folder)):
        if is_complete(path):
            chosen = path
            break
        incomplete.append(path)
    incomplete.reverse()
    moved = [_set_aside(path) for path in incomplete] if move_aside else []
    return Choice(chosen, incomplete, moved)


def describe(choice: Choice) -> str | None:
    """The one line a run prints when it skips incomplete checkpoints; None when there were none."""
    if not choice.incomplete:
        return None
    names = ", ".join(path.name for path in choice.incomplete)
    verb = "is" if len(choice.incomplete) == 1 else "are"
    moved = f"; moved to {', '.join(p.name for p in choice.moved_to)}" if choice.moved_to else ""
    then = (
        f"resuming from {choice.checkpoint.name}"
        if choice.checkpoint
        else "no complete checkpoint, starting from step 0"
    )
    return f"alignment-tax train: {names} {verb} incomplete (interrupted while saving{moved}); {then}"


def resume_point(folder: Path, main_process: bool = True) -> str | None:
    """The checkpoint to resume from, saying in one line (on the main process) what was skipped.

    Only the main process renames; the others see the same files and so choose the same one.
    """
    choice = choose_checkpoint(folder, move_aside=main_process)
    line = describe(choice)
    if line and main_process:
        print(line, file=sys.stderr, flush=True)
    return str(choice.checkpoint) if choice.checkpoint else None
