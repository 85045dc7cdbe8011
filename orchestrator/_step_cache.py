"""Step cache stores: a table in the run database (SQLite or Postgres), or a dict for `memory`.

`open_step_cache(url)` picks the store for a checkpointer URL. The database store connects on
first use (so reading a database never creates one) and keeps one row per key in
`orchestrator_step_cache` (created by the storage migrations): the output as JSON and when it
expires. Expired rows are replaced on the next store; `clear()` drops every entry.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from orchestrator.storage import Backend, SqlDb, backend_of, open_db, upgrade


class MemoryStepCache:
    """Step outputs in this process (the `memory` checkpointer's cache)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> tuple[bool, Any]:
        """`(True, output)` for a live entry, else `(False, None)`."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[1] <= now:
            return False, None
        return True, json.loads(entry[0])

    def put(self, key: str, value: Any, now: float, ttl: float) -> None:
        """Store `value` until `now + ttl`."""
        text = json.dumps(value, default=str)
        with self._lock:
            self._entries[key] = (text, now + ttl)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        """Nothing to close (entries stay for the life of the process)."""


class DbStepCache:
    """Step outputs in the `orchestrator_step_cache` table of the run database (SQLite or
    Postgres), shared by every process on that database."""

    def __init__(self, url: str) -> None:
        self.url = url
        """The database URL."""
        self._lock = threading.Lock()
        self._db: SqlDb | None = None

    def _conn(self) -> SqlDb:
        with self._lock:
            if self._db is None:
                db = open_db(self.url)
                try:
                    upgrade(db)
                except BaseException:
                    db.close()
                    raise
                self._db = db
            return self._db

    def get(self, key: str, now: float) -> tuple[bool, Any]:
        """`(True, output)` for a live entry, else `(False, None)`."""
        rows = self._conn().query(
            "SELECT value FROM orchestrator_step_cache WHERE key=? AND expires_at>?", (key, now)
        )
        return (True, json.loads(rows[0][0])) if rows else (False, None)

    def put(self, key: str, value: Any, now: float, ttl: float) -> None:
        """Store `value` until `now + ttl` (replacing any older entry)."""
        text = json.dumps(value, default=str)
        self._conn().execute(
            "INSERT INTO orchestrator_step_cache (key, value, stored_at, expires_at)"
            " VALUES (?,?,?,?) ON CONFLICT (key) DO UPDATE SET value=excluded.value,"
            " stored_at=excluded.stored_at, expires_at=excluded.expires_at",
            (key, text, now, now + ttl),
        )

    def clear(self) -> None:
        """Drop every entry."""
        self._conn().execute("DELETE FROM orchestrator_step_cache")

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def open_step_cache(url: str) -> MemoryStepCache | DbStepCache:
    """The step cache for a checkpointer URL: a table in its database, or memory for
    `memory`."""
    if backend_of(url) is Backend.MEMORY:
        return MemoryStepCache()
    return DbStepCache(url)
