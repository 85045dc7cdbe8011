"""The run index kept alongside the checkpoints: runs, lifecycle requests, ownership, claims.

Checkpoints say where a run stands; this index answers what checkpoints cannot answer cheaply
or across processes: which runs exist, which process is executing a run right now, whether
another process asked it to pause or cancel, and who claimed an expired approval. On SQLite it
is three tables in the same database file; for `memory` it lives in the process.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orchestrator_runs (
    run_id TEXT PRIMARY KEY, workflow_id TEXT, status TEXT, started_at TEXT,
    finished_at TEXT, updated_at REAL, current_steps TEXT, deadline REAL,
    owner_host TEXT, owner_pid INTEGER);
CREATE TABLE IF NOT EXISTS orchestrator_control (
    run_id TEXT PRIMARY KEY, request TEXT NOT NULL, requested_at REAL);
CREATE TABLE IF NOT EXISTS orchestrator_claims (
    claim TEXT PRIMARY KEY, claimed_at REAL);
"""

_HOST = socket.gethostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunIndex:
    """Runs, lifecycle requests and claims in a SQLite file (or in memory for `memory`).

    Writes may wait for the checkpointer's write lock: call them off the event loop
    (`asyncio.to_thread`), never from a coroutine that the checkpointer's commit waits for.
    Reads never wait (WAL mode).
    """

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        target = str(path) if path is not None else ":memory:"
        self._db = sqlite3.connect(
            target, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._db.executescript(_SCHEMA)
        # Reads get a connection and a lock of their own: a reader on the event loop must never
        # queue behind a writer thread that waits for the checkpointer's write lock (WAL reads
        # do not wait for writers). An in-memory index has one connection and no such writer.
        self._rlock = threading.Lock() if path is not None else self._lock
        self._rdb = (
            sqlite3.connect(target, timeout=30, check_same_thread=False, isolation_level=None)
            if path is not None
            else self._db
        )

    def close(self) -> None:
        """Close the connections."""
        self._db.close()
        if self._rdb is not self._db:
            self._rdb.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._rlock:
            return self._rdb.execute(sql, args).fetchall()

    # -- runs ------------------------------------------------------------------------------

    def record(
        self, run_id: str, values: dict[str, Any], now: float, *, deadline: float | None = None
    ) -> None:
        """Upsert what the latest checkpoint says about a run."""
        self._exec(
            "INSERT INTO orchestrator_runs (run_id, workflow_id, status, started_at, finished_at,"
            " updated_at, current_steps, deadline) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(run_id)"
            " DO UPDATE SET workflow_id=excluded.workflow_id, status=excluded.status,"
            " started_at=excluded.started_at, finished_at=excluded.finished_at,"
            " updated_at=excluded.updated_at, current_steps=excluded.current_steps,"
            " deadline=excluded.deadline",
            (
                run_id,
                values.get("workflow_id"),
                values.get("status"),
                values.get("started_at"),
                values.get("finished_at"),
                now,
                json.dumps(values.get("current_steps", [])),
                deadline,
            ),
        )

    def runs(
        self,
        *,
        status: str | None = None,
        workflow_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Indexed runs, newest first, optionally filtered."""
        sql = (
            "SELECT run_id, workflow_id, status, started_at, finished_at, current_steps,"
            " deadline FROM orchestrator_runs WHERE 1=1"
        )
        args: list[Any] = []
        if status:
            sql += " AND status = ?"
            args.append(status)
        if workflow_id:
            sql += " AND workflow_id = ?"
            args.append(workflow_id)
        rows = self._read(sql + " ORDER BY started_at DESC", tuple(args))
        keys = (
            "run_id",
            "workflow_id",
            "status",
            "started_at",
            "finished_at",
            "current_steps",
            "deadline",
        )
        out = [dict(zip(keys, row, strict=True)) for row in rows]
        for row in out:
            row["current_steps"] = json.loads(row["current_steps"] or "[]")
        return out

    # -- ownership -------------------------------------------------------------------------

    def acquire(self, run_id: str) -> None:
        """Mark this process as the one executing the run."""
        self._exec(
            "INSERT INTO orchestrator_runs (run_id, owner_host, owner_pid) VALUES (?,?,?)"
            " ON CONFLICT(run_id) DO UPDATE SET owner_host=excluded.owner_host,"
            " owner_pid=excluded.owner_pid",
            (run_id, _HOST, os.getpid()),
        )

    def release(self, run_id: str) -> None:
        """This process stopped executing the run."""
        self._exec(
            "UPDATE orchestrator_runs SET owner_pid=NULL WHERE run_id=? AND owner_pid=?",
            (run_id, os.getpid()),
        )

    def executing_elsewhere(self, run_id: str) -> bool:
        """True when another live process on this host is executing the run."""
        rows = self._read(
            "SELECT owner_host, owner_pid FROM orchestrator_runs WHERE run_id=?", (run_id,)
        )
        row = rows[0] if rows else None
        if not row or row[1] is None or row[1] == os.getpid():
            return False
        return row[0] != _HOST or _alive(int(row[1]))

    # -- lifecycle requests ----------------------------------------------------------------

    def request(self, run_id: str, request: str, now: float) -> None:
        """Ask the process executing the run to pause or cancel at the next step boundary."""
        self._exec(
            "INSERT OR REPLACE INTO orchestrator_control VALUES (?,?,?)", (run_id, request, now)
        )

    def pending_request(self, run_id: str) -> str | None:
        """The lifecycle request waiting for this run, if any."""
        rows = self._read("SELECT request FROM orchestrator_control WHERE run_id=?", (run_id,))
        return str(rows[0][0]) if rows else None

    def clear_request(self, run_id: str) -> None:
        """Forget the run's lifecycle request."""
        self._exec("DELETE FROM orchestrator_control WHERE run_id=?", (run_id,))

    # -- claims ----------------------------------------------------------------------------

    def claim(self, key: str, now: float) -> bool:
        """Claim `key` once across processes; False when someone already claimed it."""
        cursor = self._exec("INSERT OR IGNORE INTO orchestrator_claims VALUES (?,?)", (key, now))
        return cursor.rowcount == 1
