"""A persistent SQLite store of judge replies, so reruns and resumed runs repeat no call.

The key is a SHA-256 over the judge's identity, the template's ``name@version``, the exact
messages sent (which hold the source, both candidates in the order shown, and for a re-ask the
unreadable reply) and the order label (``"ab"``: A shown first). The order is in the key on
its own so that two identical candidates still get their two calls. Only the raw reply is
stored, never the API key: verdicts are re-parsed on every run, so a parser fix applies to
cached replies too.

Each reply is committed as it arrives (:class:`~alignment_tax.sqlite_store.SQLiteStore`: WAL,
``synchronous=NORMAL``: durable across a killed process, and no fsync per call to stall the
event loop).

Several processes may share one cache (two judge runs over overlapping pairs, say) without
making a call twice: a process *claims* a key (a ``claims`` row naming its host, pid and a token,
taken in one write transaction with the check for a reply) before calling, and another process
that finds the claim leaves that key for later instead of calling. The reply's ``put`` drops the
claim; a call that ends without a reply ``release``-s it. A claim whose process is gone (same
host, pid dead or a zombie) or older than ``CLAIM_TTL`` is stale and taken over.

>>> import tempfile, os
>>> cache = VerdictCache(os.path.join(tempfile.mkdtemp(), "judge.sqlite"))
>>> key = cache_key("m", "translation@1", [{"role": "user", "content": "x"}], "ab")
>>> cache.get(key) is None
True
>>> cache.claim(key) is CLAIMED
True
>>> cache.put(key, "m", "translation@1", '{"verdict": "tie"}'); cache.get(key)
'{"verdict": "tie"}'
>>> cache.claim(key)   # answered meanwhile: the reply, and no call to make
'{"verdict": "tie"}'
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path

from alignment_tax.errors import UserError
from alignment_tax.sqlite_store import SQLiteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    template TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed REAL NOT NULL
);
"""

# A claim from another host cannot be checked for a live process; after this long it is taken
# over (a call, its retries included, takes far less; a duplicate call is the worst outcome).
CLAIM_TTL = 3600.0


class _Claimed:
    def __repr__(self) -> str:
        return "CLAIMED"


class _Busy:
    def __repr__(self) -> str:
        return "BUSY"


CLAIMED = _Claimed()  # the key is now this process's to call
BUSY = _Busy()  # another live caller holds the key: come back later


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process on this host (a zombie, killed but not reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): the signal test is all there is
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cache_key(judge: str, template: str, messages: list[dict[str, str]], order: str) -> str:
    payload = json.dumps(
        {"judge": judge, "template": template, "messages": messages, "order": order},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class VerdictCache:
    """``get``/``put`` of raw replies by key; safe to share between processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._store = SQLiteStore(self.path, _SCHEMA, timeout=30)
        except (OSError, sqlite3.Error) as error:
            raise UserError(f"cannot open the judge cache {self.path}: {error}") from error
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex}"  # this cache object's claims

    def get(self, key: str) -> str | None:
        return self._store.lookup("replies", "reply", key)

    def put(self, key: str, judge: str, template: str, reply: str) -> None:
        with self._store.transaction():
            self._store.execute(
                "INSERT OR REPLACE INTO replies (key, judge, template, reply, created) VALUES (?, ?, ?, ?, ?)",
                (key, judge, template, reply, time.time()),
            )
            self._store.execute("DELETE FROM claims WHERE key = ?", (key,))

    def claim(self, key: str) -> str | _Claimed | _Busy:
        """The cached reply; else :data:`CLAIMED` (call it, then ``put`` or ``release``); else
        :data:`BUSY` when another live caller (this process's included) holds the key."""
        with self._store.transaction():
            reply = self.get(key)
            if reply is not None:
                return reply
            row = self._store.execute("SELECT host, pid, claimed FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None and not self._stale(*row):
                return BUSY
            self._store.execute(
                "INSERT OR REPLACE INTO claims (key, owner, host, pid, claimed) VALUES (?, ?, ?, ?, ?)",
                (key, self.owner, self.host, self.pid, time.time()),
            )
            return CLAIMED

    def release(self, key: str) -> None:
        """Give up this process's claim on ``key`` (the call ended without a reply to keep)."""
        with self._store.transaction():
            self._store.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner))

    def release_all(self) -> None:
        with self._store.transaction():
            self._store.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))

    def _stale(self, host: str, pid: int, claimed: float) -> bool:
        if time.time() - claimed > CLAIM_TTL:
            return True
        return host == self.host and not _process_alive(pid)

    def __len__(self) -> int:
        return self._store.count("replies")

    def close(self) -> None:
        try:
            self.release_all()  # claims left by calls that never ended (a stopped run)
        finally:
            self._store.close()
