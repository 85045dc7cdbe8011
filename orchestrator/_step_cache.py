"""Step cache stores: a table in the run's SQLite file, or a dict for `memory`.

`open_step_cache(url)` picks the store for a checkpointer URL. The SQLite store connects on
first use (so reading a database never creates one) and keeps one row per key in
`orchestrator_step_cache`: the output as JSON and when it expires. Expired rows are replaced
on the next store; `clear()` drops every entry.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from orchestrator.storage import sqlite_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orchestrator_step_cache (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, stored_at REAL NOT NULL,
    expires_at REAL NOT NULL);
"""


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


class SQLiteStepCache:
    """Step outputs in the `orchestrator_step_cache` table of a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        """The database file."""
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                str(self.path), timeout=30, check_same_thread=False, isolation_level=None
            )
            db.execute("PRAGMA busy_timeout=30000")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def get(self, key: str, now: float) -> tuple[bool, Any]:
        """`(True, output)` for a live entry, else `(False, None)`."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT value FROM orchestrator_step_cache WHERE key=? AND expires_at>?",
                    (key, now),
                )
                .fetchone()
            )
        return (True, json.loads(row[0])) if row else (False, None)

    def put(self, key: str, value: Any, now: float, ttl: float) -> None:
        """Store `value` until `now + ttl` (replacing any older entry)."""
        text = json.dumps(value, default=str)
        with self._lock:
            self._conn().execute(
                "INSERT OR REPLACE INTO orchestrator_step_cache VALUES (?,?,?,?)",
                (key, text, now, now + ttl),
            )

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._conn().execute("DELETE FROM orchestrator_step_cache")

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def open_step_cache(url: str) -> MemoryStepCache | SQLiteStepCache:
    """The step cache for a checkpointer URL: the run's SQLite file, else memory (a Postgres
    table is not built yet; Postgres runs cache per process)."""
    if url.startswith("sqlite:///"):
        return SQLiteStepCache(sqlite_path(url))
    return MemoryStepCache()
