"""Loading models by local path or hub id, with one clear line when that fails."""

from __future__ import annotations

from pathlib import Path

from alignment_tax.errors import UserError


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def load_embedder(name_or_path: str, device: str | None = None):
    """A sentence-transformers model from a folder or a hub id."""
    from sentence_transformers import SentenceTransformer

    path = Path(name_or_path).expanduser()
    if _looks_local(name_or_path) and not path.exists():
        raise UserError(f"embedder not found: {name_or_path}")
    try:
        return SentenceTransformer(str(path) if path.exists() else name_or_path, device=device)
    except OSError as error:
        raise UserError(f"could not load embedder {name_or_path!r}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
