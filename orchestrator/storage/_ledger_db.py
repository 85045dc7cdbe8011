"""Where the audit ledger's entries are stored: a SQLite file, memory, or Postgres.

The ledger (`orchestrator._audit`) chains and hashes entries; a `LedgerDb` only stores and
reads them. Appends from several processes stay one chain on both backends: a write
re-sequences each entry after what the database holds, inside a transaction that excludes
other writers of the same run (SQLite's write lock; a Postgres advisory lock per run). The
table is append-only in the database itself: UPDATE and DELETE (and TRUNCATE on Postgres)
are refused by triggers.
"""

from __future__ import annotations

import json
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from orchestrator.storage._migrations import upgrade
from orchestrator.storage._sql import PostgresDb, SqlDb, SqliteDb, Tx, _SqliteTx
from orchestrator.storage._url import Backend, backend_of, sqlite_path

COLUMNS = "run_id, seq, timestamp, actor, event, step_id, data, prev_hash, hash"
READ_WAIT_MS = 5000
"""How long a SQLite read may wait (WAL readers only wait on recovery)."""
WRITER_WAIT = 30.0
"""Seconds the SQLite writer thread waits for the write lock per attempt."""
WRITER_PATIENCE = 300.0
"""Seconds the SQLite writer thread keeps trying before it gives up."""

Record = tuple[dict[str, Any], str | None]
"""An entry and its dedupe key."""
Rechain = Callable[[dict[str, Any], int, str], None]
"""Moves an entry after `(seq, prev_hash)` when another writer appended meanwhile."""

Stored = Callable[[BaseException | None], None]
"""Told, on the event loop, that entries handed to an `EntrySink` were committed (None)."""


class EntrySink(Protocol):
    """Commits audit entries together with other saves (the checkpointer's transaction)."""

    path: Path | None
    """The SQLite file it writes to; a ledger only uses a sink on its own file."""

    def store_entries(self, records: list[Record], rechain: Rechain, done: Stored) -> bool:
        """Queue `records` into the next commit; False when it cannot (wrong thread)."""


class LedgerDb(ABC):
    """Stores and reads audit entries; the ledger calls it under its own lock."""

    _db: SqliteDb | PostgresDb

    needs_writer: bool = False
    """True when `try_insert` can find the database busy (then a writer thread `insert`s)."""
    commits: ClassVar[int] = 0
    """Transactions ledgers of this process committed on their own connections (a
    benchmark figure; the checkpointer's shared commits are counted by the saver)."""

    @abstractmethod
    def try_insert(self, records: list[Record], rechain: Rechain) -> bool:
        """Store `records` now without waiting for a lock; False when the database is busy."""

    @abstractmethod
    def insert(self, records: list[Record], rechain: Rechain) -> None:
        """Store `records`, waiting for the write lock (from a thread of its own)."""

    def recorded(self, run_id: str, key: str) -> dict[str, Any] | None:
        """The entry stored under dedupe `key` for the run, if any."""
        rows = self._db.query(
            f"SELECT {COLUMNS} FROM orchestrator_audit WHERE run_id=? AND dedupe_key=?",  # noqa: S608 -- constant column list
            (run_id, key),
        )
        return from_row(rows[0]) if rows else None

    def stored_head(self, run_id: str) -> tuple[int, str]:
        """`(seq, hash)` of the run's last stored entry; `(0, GENESIS)` when none."""
        return _head(self._db, run_id)

    def rows(self, run_id: str) -> list[dict[str, Any]]:
        """The run's stored entries in `seq` order."""
        rows = self._db.query(
            f"SELECT {COLUMNS} FROM orchestrator_audit WHERE run_id=? ORDER BY seq",  # noqa: S608 -- constant column list
            (run_id,),
        )
        return [from_row(row) for row in rows]

    def close(self) -> None:
        """Close the connections."""
        self._db.close()


GENESIS = "0" * 64


def _head(tx: Tx | SqlDb, run_id: str) -> tuple[int, str]:
    rows = tx.query(
        "SELECT seq, hash FROM orchestrator_audit WHERE run_id=? ORDER BY seq DESC LIMIT 1",
        (run_id,),
    )
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)


def insert_records(tx: Tx, records: list[Record], rechain: Rechain) -> None:
    """Insert inside the caller's transaction, each entry after what the database holds."""
    heads: dict[str, tuple[int, str]] = {}  # within the transaction, read once per run
    for entry, key in records:
        run_id = entry["run_id"]
        seq, prev = heads[run_id] if run_id in heads else _head(tx, run_id)
        if (entry["seq"], entry["prev_hash"]) != (seq + 1, prev):
            rechain(entry, seq + 1, prev)
        heads[run_id] = (entry["seq"], entry["hash"])
        tx.execute(
            f"INSERT INTO orchestrator_audit ({COLUMNS}, dedupe_key)"  # noqa: S608 -- constant column list
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                entry["run_id"],
                entry["seq"],
                entry["timestamp"],
                entry["actor"],
                entry["event"],
                entry["step_id"],
                json.dumps(
                    entry["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ),
                entry["prev_hash"],
                entry["hash"],
                key,
            ),
        )


def from_row(row: tuple[Any, ...] | Mapping[str, Any]) -> dict[str, Any]:
    """An entry as read back (tampered, unparsable data is kept as text)."""
    run_id, seq, timestamp, actor, event, step_id, data, prev_hash, digest = tuple(row)
    try:
        parsed: Any = json.loads(data)
    except (TypeError, ValueError):
        parsed = data
    return {
        "run_id": run_id,
        "seq": seq,
        "timestamp": timestamp,
        "actor": actor,
        "event": event,
        "step_id": step_id,
        "data": parsed,
        "prev_hash": prev_hash,
        "hash": digest,
    }


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteLedgerDb(LedgerDb):
    """Entries in a SQLite file (WAL) or a private in-memory database (`path=None`).

    The checkpointer can hold SQLite's write lock across an `await`: `try_insert` (on the
    event loop) never waits for it, and `insert` waits on a connection of its own.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._sqlite = self._db = SqliteDb(path)
        upgrade(self._db)
        self.needs_writer = path is not None
        if path is not None:
            with self._sqlite.writer() as conn:
                # no fsync per entry: the checkpointer's next commit syncs the same WAL file,
                # so entries are as durable as the checkpoint that follows them
                conn.execute("PRAGMA synchronous=NORMAL")

    def try_insert(self, records: list[Record], rechain: Rechain) -> bool:
        with self._sqlite.writer() as conn:
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if self.path is not None and _busy(exc):
                    return False
                raise
            finally:
                conn.execute(f"PRAGMA busy_timeout={READ_WAIT_MS}")
            _commit(conn, records, rechain)
        return True

    def insert(self, records: list[Record], rechain: Rechain) -> None:
        assert self.path is not None  # an in-memory ledger never meets a busy database
        give_up = time.monotonic() + WRITER_PATIENCE
        conn = sqlite3.connect(str(self.path), timeout=WRITER_WAIT, isolation_level=None)
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if not _busy(exc) or time.monotonic() > give_up:
                        raise
            _commit(conn, records, rechain)
        finally:
            conn.close()


def _commit(conn: sqlite3.Connection, records: list[Record], rechain: Rechain) -> None:
    try:
        insert_records(_SqliteTx(conn), records, rechain)
        conn.execute("COMMIT")
        LedgerDb.commits += 1
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class PostgresLedgerDb(LedgerDb):
    """Entries in Postgres; appenders of one run serialise on an advisory lock."""

    def __init__(self, url: str) -> None:
        self._db = PostgresDb(url, max_size=2)
        try:
            upgrade(self._db)
        except BaseException:
            self._db.close()
            raise

    def try_insert(self, records: list[Record], rechain: Rechain) -> bool:
        self.insert(records, rechain)  # row-level locking: nothing holds us up for long
        return True

    def insert(self, records: list[Record], rechain: Rechain) -> None:
        runs = sorted({entry["run_id"] for entry, _ in records})
        with self._db.transaction() as tx:
            for run_id in runs:  # sorted: two writers never wait on each other in a cycle
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"audit:{run_id}",))
            insert_records(tx, records, rechain)
        LedgerDb.commits += 1


def open_ledger_db(target: str | Path | None) -> LedgerDb:
    """The `LedgerDb` for a database URL, a SQLite file path, or None (memory)."""
    if target is None:
        return SqliteLedgerDb(None)
    if isinstance(target, Path):
        return SqliteLedgerDb(target)
    backend = backend_of(target)
    if backend is Backend.POSTGRES:
        return PostgresLedgerDb(target)
    if backend is Backend.SQLITE:
        return SqliteLedgerDb(sqlite_path(target))
    return SqliteLedgerDb(None)
