"""Data hashes that results files carry, so a score can be traced to the exact data it used.

A local file is hashed by its bytes; a hub dataset (or anything else read into memory) by the
canonical JSON of its records: keys sorted, no whitespace, UTF-8, non-ASCII kept as is.

>>> records_sha256([{"b": 1, "a": "ཀ"}]) == records_sha256([{"a": "ཀ", "b": 1}])
True
>>> len(records_sha256([]))
64
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed, so large files are fine)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Fallback for values JSON has no type for (bytes, dates, numpy scalars)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def canonical_json(records: Iterable[Any]) -> str:
    """The canonical JSON text of ``records`` that :func:`records_sha256` hashes.

    >>> canonical_json([{"z": 1, "a": "中"}])
    '[{"a":"中","z":1}]'
    """
    return json.dumps(list(records), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_jsonable)


def records_sha256(records: Iterable[Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``records`` (order matters, key order does not)."""
    return hashlib.sha256(canonical_json(records).encode("utf-8")).hexdigest()
