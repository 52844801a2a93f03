"""A persistent SQLite store of judge replies, so reruns and resumed runs repeat no call.

The key is a SHA-256 over the judge's identity, the template's ``name@version``, the exact
messages sent (which hold the source, both candidates in the order shown, and for a re-ask the
unreadable reply) and the order label (``"ab"``: A shown first). The order is in the key on
its own so that two identical candidates still get their two calls. Only the raw reply is
stored, never the API key: verdicts are re-parsed on every run, so a parser fix applies to
cached replies too.

Each reply is committed as it arrives (WAL, ``synchronous=NORMAL``: durable across a killed
process, and no fsync per call to stall the event loop).

>>> import tempfile, os
>>> cache = VerdictCache(os.path.join(tempfile.mkdtemp(), "judge.sqlite"))
>>> key = cache_key("m", "translation@1", [{"role": "user", "content": "x"}], "ab")
>>> cache.get(key) is None
True
>>> cache.put(key, "m", "translation@1", '{"verdict": "tie"}'); cache.get(key)
'{"verdict": "tie"}'
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from alignment_tax.errors import UserError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    template TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(judge: str, template: str, messages: list[dict[str, str]], order: str) -> str:
    payload = json.dumps(
        {"judge": judge, "template": template, "messages": messages, "order": order},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class VerdictCache:
    """``get``/``put`` of raw replies by key; safe to share between processes (WAL, busy timeout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as error:
            raise UserError(f"cannot open the judge cache {self.path}: {error}") from error

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, judge: str, template: str, reply: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO replies (key, judge, template, reply, created) VALUES (?, ?, ?, ?, ?)",
            (key, judge, template, reply, time.time()),
        )
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        self._db.close()
