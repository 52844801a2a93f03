"""Which ``checkpoint-N`` folder a run resumes from: the newest *complete* one.

A run killed while the Trainer writes a checkpoint (or a disk that fills up during the save)
leaves a folder that transformers would pick as the newest and then fail to load, on every later
run. transformers 5.x writes a checkpoint in this order (``Trainer._save_checkpoint``): the
weights, then optimizer, scheduler, scaler and RNG states, and ``trainer_state.json`` last. So a
checkpoint is complete when ``trainer_state.json`` parses and no file it holds is cut short.

Incomplete folders are renamed ``incomplete-checkpoint-N``: neither ``get_last_checkpoint`` nor the
Trainer's rotation (which globs ``checkpoint-*``) sees them again, and nothing is deleted.
"""

from __future__ import annotations

import json
import re
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

TRAINER_STATE = "trainer_state.json"
INCOMPLETE_PREFIX = "incomplete-"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Choice:
    """The checkpoint to resume from (None: start from step 0) and the incomplete ones set aside."""

    checkpoint: Path | None
    incomplete: list[Path]
    moved_to: list[Path]


def saved_step(checkpoint: str | Path) -> int:
    """The optimizer step a checkpoint was saved at, from its ``trainer_state.json``."""
    state = json.loads((Path(checkpoint) / TRAINER_STATE).read_text(encoding="utf-8"))
    return int(state["global_step"])


def _safetensors_whole(path: Path) -> bool:
    """The header parses and the tensors it lists end exactly where the file ends."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return False
        (header_size,) = struct.unpack("<Q", prefix)
        if 8 + header_size > size:
            return False
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return False
    try:
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    except (AttributeError, KeyError, IndexError, TypeError):
        return False
    return 8 + header_size + max(ends, default=0) == size


def _torch_file_whole(path: Path) -> bool:
    """``torch.save`` writes a zip archive; a cut-short one has lost its central directory."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if not magic:
        return False
    return zipfile.is_zipfile(path) if magic == _ZIP_MAGIC else True  # an old-style pickle: no cheap check


def _state_whole(folder: Path) -> bool:
    try:
        saved_step(folder)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return False
    return True


def is_complete(folder: Path) -> bool:
    """``trainer_state.json`` (written last) reads back, and no weight or state file is cut short."""
    try:
        return _state_whole(folder) and _files_whole(folder)
    except OSError:  # gone while we looked: another process set it aside as incomplete
        return False


def _files_whole(folder: Path) -> bool:
    # No list of required files: which weight files a checkpoint holds depends on PEFT, FSDP or
    # DeepSpeed, and trainer_state.json, written last, already says the others were written.
    for path in (p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".safetensors" and not _safetensors_whole(path):
            return False
        if path.suffix in (".pt", ".pth", ".bin") and not _torch_file_whole(path):
            return False
    return True


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
