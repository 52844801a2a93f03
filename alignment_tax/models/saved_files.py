"""Whether saved weights and checkpoints are whole: the one rule training's resume and evaluation share.

A run killed while the Trainer saves (or a disk that fills up during the save) leaves files cut
short; a copy that failed leaves empty ones. transformers 5.x writes a checkpoint in this order
(``Trainer._save_checkpoint``): the weights, then optimizer, scheduler, scaler and RNG states, and
``trainer_state.json`` last. So a checkpoint is complete when ``trainer_state.json`` parses and no
file it holds is cut short; an adapter is usable when its config parses and its weights are whole.
Training resumes only from a complete checkpoint; evaluation skips (a series) or refuses (one
adapter) anything else, instead of failing deep inside PEFT or, worse, evaluating half a file.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from alignment_tax.errors import UserError

TRAINER_STATE = "trainer_state.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_ZIP_MAGIC = b"PK\x03\x04"


def safetensors_whole(path: Path) -> bool:
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


def torch_file_whole(path: Path) -> bool:
    """``torch.save`` writes a zip archive; a cut-short one has lost its central directory."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if not magic:
        return False
    return zipfile.is_zipfile(path) if magic == _ZIP_MAGIC else True  # an old-style pickle: no cheap check


def cut_short(folder: Path) -> Path | None:
    """The first weight or state file under ``folder`` that is empty or cut short; None when all are whole."""
    # No list of required files: which weight files a checkpoint holds depends on PEFT, FSDP or
    # DeepSpeed, and trainer_state.json, written last, already says the others were written.
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".safetensors" and not safetensors_whole(path):
            return path
        if path.suffix in (".pt", ".pth", ".bin") and not torch_file_whole(path):
            return path
    return None


def saved_step(checkpoint: str | Path) -> int:
    """The optimizer step a checkpoint was saved at, from its ``trainer_state.json``."""
    state = json.loads((Path(checkpoint) / TRAINER_STATE).read_text(encoding="utf-8"))
    return int(state["global_step"])


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete training checkpoint, in a few words; None when it is."""
    try:
        saved_step(folder)
    except FileNotFoundError:
        return f"no {TRAINER_STATE} (interrupted while saving)"
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return f"{TRAINER_STATE} does not read back (interrupted while saving)"
    try:
        damaged = cut_short(folder)
    except OSError:  # gone while we looked: another process set it aside as incomplete
        return "it changed while being read"
    return None if damaged is None else f"{damaged.name} is empty or cut short"


def adapter_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a usable PEFT adapter (config and weights), in a few words; None when it is."""
    config = folder / ADAPTER_CONFIG
    if not config.is_file():
        return f"no {ADAPTER_CONFIG}"
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{ADAPTER_CONFIG} is not valid JSON ({error})"
    if not isinstance(parsed, dict):
        return f"{ADAPTER_CONFIG} is not a JSON object"
    weights = [folder / ADAPTER_WEIGHTS, folder / "adapter_model.bin"]
    present = [path for path in weights if path.is_file()]
    if not present:
        return f"no {ADAPTER_WEIGHTS}"
    whole = safetensors_whole if present[0].suffix == ".safetensors" else torch_file_whole
    if not whole(present[0]):
        return f"{present[0].name} is empty or cut short"
    return None


def check_adapter_files(adapter: str | Path) -> None:
    """One line, before any weights load, for an adapter folder whose config or weights are damaged."""
    folder = Path(adapter).expanduser()
    if not folder.is_dir():
        return  # a hub id, or a path the caller reports as missing
    problem = adapter_problem(folder)
    if problem is not None:
        raise UserError(f"adapter {adapter} is damaged: {problem}")
