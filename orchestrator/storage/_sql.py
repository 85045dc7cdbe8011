"""One small SQL surface over SQLite (`sqlite3`) and Postgres (`psycopg` with a pool).

The stores write their SQL once, with `?` placeholders; the Postgres side turns them into
`%s`. Every method is blocking and thread-safe: call it from a worker thread when the event
loop must not wait (SQLite's write lock can be held by the checkpointer across an `await`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.storage._url import connect_timeout, postgres_missing, safe_url, scrub
from state import CheckpointerError

Row = tuple[Any, ...]


class Tx(ABC):
    """A transaction in progress: statements run on one connection and commit together."""

    @abstractmethod
    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Rows of a SELECT (or of a statement with RETURNING)."""

    @abstractmethod
    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""


class SqlDb(ABC):
    """A database the stores talk to: reads, single statements and transactions."""

    dialect: str
    """`sqlite` or `postgres`: migrations differ by dialect, statements do not."""

    @abstractmethod
    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Rows of a read; never waits for a writer."""

    @abstractmethod
    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; the number of rows it changed."""

    @abstractmethod
    def transaction(self, lock: str | None = None) -> Any:
        """A context manager yielding a `Tx` that commits on exit (rolls back on error).

        `lock` serialises transactions that name the same key across processes (SQLite
        serialises every write transaction anyway; Postgres takes an advisory lock).
        """

    @abstractmethod
    def close(self) -> None:
        """Close the connections."""


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, tuple(args)).fetchall()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(args)).rowcount


class SqliteDb(SqlDb):
    """A SQLite file (WAL) or a private in-memory database (`path=None`).

    Reads have a connection and a lock of their own: a reader on the event loop never queues
    behind a writer thread that waits for the checkpointer's write lock.
    """

    dialect = "sqlite"

    def __init__(self, path: Path | None) -> None:
        self.path = path
        target = ":memory:"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            target = str(path)
        self._lock = threading.RLock()
        self._db = self._connect(target)
        if path is not None:
            _wal(self._db)
        self._rlock = threading.Lock() if path is not None else self._lock
        self._rdb = self._connect(target) if path is not None else self._db

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self._rlock:
            return self._rdb.execute(sql, tuple(args)).fetchall()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, tuple(args)).rowcount

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[Tx]:
        del lock  # BEGIN IMMEDIATE already serialises every writer of the file
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def writer(self) -> Iterator[sqlite3.Connection]:
        """The write connection, held exclusively (for callers that manage transactions)."""
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._rdb is not self._db:
            with self._rlock:
                self._rdb.close()


def _pg(sql: str, args: Sequence[Any] = ()) -> Any:
    # without arguments psycopg sends the text as is (a `?` may be a jsonb operator there)
    return sql.replace("?", "%s") if args else sql


class _PostgresTx(Tx):
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return list(self._conn.execute(_pg(sql, args), tuple(args) or None).fetchall())

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self._conn.execute(_pg(sql, args), tuple(args) or None).rowcount)


class PostgresDb(SqlDb):
    """A Postgres database through a small `psycopg_pool.ConnectionPool`."""

    dialect = "postgres"

    def __init__(self, url: str, *, max_size: int = 4) -> None:
        self.url = url
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise postgres_missing(url) from None
        timeout = connect_timeout()
        try:  # once, directly: a wrong address or password fails now with the server's reason
            psycopg.connect(url, connect_timeout=int(timeout), autocommit=True).close()
        except Exception as exc:  # noqa: BLE001 -- psycopg raises several types; all mean "cannot connect"
            raise connection_error(url, exc) from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "connect_timeout": int(timeout)},
            open=False,
            timeout=timeout,
            name="orchestrator",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 -- psycopg/pool raise several types; all mean "cannot connect"
            self._pool.close()
            raise connection_error(url, exc) from None

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self._pool.connection() as conn:
            return list(conn.execute(_pg(sql, args), tuple(args) or None).fetchall())

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._pool.connection() as conn:
            return int(conn.execute(_pg(sql, args), tuple(args) or None).rowcount)

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            if lock is not None:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
            yield _PostgresTx(conn)

    def close(self) -> None:
        self._pool.close()


def lock_retries(wait: float = 30.0) -> Iterator[float]:
    """Pauses (seconds) before each retry of an idempotent step SQLite refused as locked.

    Several processes creating or migrating one new file can get "database is locked" at
    once, without the busy timeout: SQLite refuses to wait where waiting could deadlock
    (switching a file to WAL, a statement whose read snapshot another writer made stale).
    Stops after `wait` seconds; the caller then makes its last attempt and lets it raise.
    """
    deadline = time.monotonic() + wait
    pause = 0.01
    while time.monotonic() < deadline:
        yield pause
        pause = min(pause * 2, 0.5)


def is_locked(exc: BaseException) -> bool:
    """Whether SQLite refused a step because another connection holds the file."""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL, waiting out other processes creating it at the same moment."""
    for pause in lock_retries():
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
        else:
            return
        time.sleep(pause)
    conn.execute("PRAGMA journal_mode=WAL")


def connection_error(url: str, exc: BaseException) -> CheckpointerError:
    """A clear error for a database that cannot be reached, without the URL's password."""
    detail = scrub(
        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url
    )
    if "couldn't get a connection" in detail or "timeout" in detail.lower():
        detail = (
            f"no answer within {connect_timeout():g}s (is the server up and is this its "
            "address? set ORCHESTRATOR_DB_CONNECT_TIMEOUT to wait longer)"
        )
    return CheckpointerError(
        f"cannot connect to the run database {safe_url(url)}: {detail}; check the URL, that "
        "the server runs, and the credentials"
    )


def open_db(url: str) -> SqlDb:
    """The `SqlDb` of a database URL (`memory`: a private in-memory SQLite database)."""
    from orchestrator.storage._url import Backend, backend_of, sqlite_path

    backend = backend_of(url)
    if backend is Backend.POSTGRES:
        return PostgresDb(url)
    path = sqlite_path(url) if backend is Backend.SQLITE else None
    try:
        return SqliteDb(path)
    except (OSError, sqlite3.Error) as exc:
        raise CheckpointerError(
            f"cannot open the run database {path}: {exc}; pass a writable location with "
            "--db sqlite:///path/runs.sqlite or set ORCHESTRATOR_DB"
        ) from exc
