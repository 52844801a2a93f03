"""One SQLite file that several processes read and write at once, each entry committed as it is made.

The judge's reply cache (:mod:`alignment_tax.judge.cache`) and evaluate's generation cache
(:mod:`alignment_tax.evaluation.generation_cache`) are both such files; each keeps its own tables
and keys, and this is what they share: how the file is opened, read by key and written.

WAL with ``synchronous=NORMAL``: a commit per entry stays cheap (no fsync per write, which would
stall a caller making many calls), and a killed process loses at most the entry it was writing.
Readers never block the writer; writers wait up to ``timeout`` seconds for each other.

>>> import tempfile, os
>>> schema = "CREATE TABLE IF NOT EXISTS t (key TEXT PRIMARY KEY, v TEXT);"
>>> store = SQLiteStore(os.path.join(tempfile.mkdtemp(), "s.sqlite"), schema, timeout=30)
>>> with store.transaction():
...     _ = store.execute("INSERT INTO t VALUES (?, ?)", ("k", "x"))
>>> store.lookup("t", "v", "k"), store.lookup("t", "v", "other"), store.count("t")
('x', None, 1)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class SQLiteStore:
    """A connection to ``path`` (created, with its folder, if missing) holding the tables of ``schema``."""

    def __init__(self, path: str | Path, schema: str, timeout: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every write names its transaction (``transaction()``), so that a check and
        # the write it decides happen under one write lock.
        self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)

    def execute(self, sql: str, parameters: tuple = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, parameters)

    def lookup(self, table: str, column: str, key: str) -> Any | None:
        """``column`` of the row whose ``key`` is ``key``; None when there is none."""
        row = self._db.execute(f"SELECT {column} FROM {table} WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def count(self, table: str) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on an error): one writer at a time."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
