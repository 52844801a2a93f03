"""Resumable model calls: every response is stored the moment it exists.

lm-eval's own ``use_cache`` needs ``sqlitedict`` and keys responses by request alone, so two
models writing to one cache would read each other's answers. Here each cache file belongs to
one model identity (its fingerprint is stored in the file and checked), responses are written
through lm-eval's cache hook as each is produced, and a run killed midway makes only the
missing calls when started again.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from lm_eval.api.model import hash_args

CACHED_METHODS = ("generate_until", "loglikelihood", "loglikelihood_rolling")


class GenerationCache:
    """A small SQLite store of ``(method, request) → response`` for one model identity."""

    def __init__(self, path: str | Path, fingerprint: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        # WAL + NORMAL: a commit per response stays cheap, and a killed process loses at most
        # the response it was writing.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT)")
        stored = self._db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
        self.discarded_stale = stored is not None and stored[0] != fingerprint
        if self.discarded_stale:
            # Responses of another model (or other settings) must never be reused.
            self._db.execute("DELETE FROM responses")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
        self._db.commit()

    def get(self, method: str, args: Any) -> Any | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (hash_args(method, args),)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, method: str, args: Any, response: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?)",
            (hash_args(method, args), json.dumps(response, ensure_ascii=False)),
        )
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class _CacheHook:
    """What lm-eval's models call with each response as soon as it is produced."""

    def __init__(self, cache: GenerationCache):
        self.cache = cache

    def add_partial(self, method: str, args: Any, response: Any) -> None:
        if method in CACHED_METHODS:
            self.cache.put(method, args, _plain(response))


def _plain(response: Any) -> Any:
    # loglikelihood responses are (float, bool) tuples; JSON turns them into lists.
    return list(response) if isinstance(response, tuple) else response


def _restore(method: str, response: Any) -> Any:
    return tuple(response) if method == "loglikelihood" else response


class ResumableMixin:
    """Mixed in front of an lm-eval model class: serve cached responses, cache new ones."""

    generation_cache: GenerationCache

    def attach_cache(self, cache: GenerationCache) -> None:
        self.generation_cache = cache
        self.set_cache_hook(_CacheHook(cache))

    def _resume(self, method: str, requests: list, **kwargs) -> list:
        cached = [self.generation_cache.get(method, request.args) for request in requests]
        missing = [request for request, response in zip(requests, cached) if response is None]
        fresh = iter(getattr(super(), method)(missing, **kwargs) if missing else [])
        return [_restore(method, next(fresh) if response is None else response) for response in cached]

    def generate_until(self, requests, disable_tqdm: bool = False):
        return self._resume("generate_until", requests, disable_tqdm=disable_tqdm)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._resume("loglikelihood", requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self._resume("loglikelihood_rolling", requests, disable_tqdm=disable_tqdm)


def resumable(lm_class: type) -> type:
    """``lm_class`` with :class:`ResumableMixin` in front (HFLM, or vLLM's model class)."""
    return type(f"Resumable{lm_class.__name__}", (ResumableMixin, lm_class), {})
