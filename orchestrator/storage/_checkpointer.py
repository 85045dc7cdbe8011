"""The checkpointer factory: `memory`, `sqlite:///path` (default) or `postgresql://...`."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from orchestrator.storage._saver import GroupCommitSqliteSaver
from orchestrator.storage._sql import connection_error, is_locked, lock_retries
from orchestrator.storage._url import (
    Backend,
    backend_of,
    connect_timeout,
    postgres_missing,
    safe_url,
    scrub,
    sqlite_path,
)
from state import CheckpointerError

ALLOWED_MODULES: tuple[tuple[str, str], ...] = tuple(
    ("state._enums", name) for name in ("WorkflowStatus", "StepStatus", "StepType", "OnTimeout")
)
"""Our types the serializer may revive; checkpoints normally hold plain data only."""


_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('orchestrator_checkpointer_setup')) AS locked"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('orchestrator_checkpointer_setup'))"


def serializer() -> JsonPlusSerializer:
    """The checkpoint serializer with the project's types allowed."""
    return JsonPlusSerializer(allowed_msgpack_modules=ALLOWED_MODULES)


async def open_checkpointer(url: str, stack: AsyncExitStack) -> BaseCheckpointSaver[str]:
    """Open the saver for `url`; resources are closed with `stack`."""
    backend = backend_of(url)
    if backend is Backend.MEMORY:
        return InMemorySaver(serde=serializer())
    if backend is Backend.SQLITE:
        return await _open_sqlite(sqlite_path(url), stack)
    return await _open_postgres(url, stack)


async def _open_sqlite(path: Path, stack: AsyncExitStack) -> BaseCheckpointSaver[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = aiosqlite.connect(str(path), timeout=30)
        worker = getattr(connection, "_thread", None)
        if worker is not None:
            # an orchestrator its user never closed must not hang the interpreter at exit;
            # committed transactions are safe, an open one is rolled back by SQLite
            worker.daemon = True
        conn = await stack.enter_async_context(connection)
        await conn.execute("PRAGMA busy_timeout=30000")
        saver = GroupCommitSqliteSaver(conn, serde=serializer(), path=path)
        await _set_up(conn, saver)
        stack.push_async_callback(saver.drain)  # closed after its queued saves commit
    except (OSError, aiosqlite.Error) as exc:
        raise CheckpointerError(
            f"cannot open the run database {path}: {exc}; pass a writable location with "
            "--db sqlite:///path/runs.sqlite or set ORCHESTRATOR_DB"
        ) from exc
    return saver


async def _set_up(conn: aiosqlite.Connection, saver: GroupCommitSqliteSaver) -> None:
    """WAL and the checkpoint tables, waiting out other processes setting up the same file
    (`lock_retries`); both steps are idempotent."""
    for pause in lock_retries():
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await saver.setup()
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
        else:
            return
        await asyncio.sleep(pause)
    await conn.execute("PRAGMA journal_mode=WAL")
    await saver.setup()


async def _open_postgres(url: str, stack: AsyncExitStack) -> BaseCheckpointSaver[str]:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row
    except ImportError:
        raise postgres_missing(url) from None
    timeout = connect_timeout()
    try:
        conn: Any = await asyncio.wait_for(
            AsyncConnection.connect(
                url,
                autocommit=True,
                prepare_threshold=0,
                row_factory=dict_row,
                connect_timeout=int(timeout),
            ),
            timeout,
        )
    except (Exception, TimeoutError) as exc:  # noqa: BLE001 -- every driver error means "cannot connect"
        raise connection_error(url, exc) from None
    stack.push_async_callback(conn.close)
    saver = AsyncPostgresSaver(conn, serde=serializer())
    # LangGraph's setup is not safe when several processes first use a database at once
    # (duplicate key in checkpoint_migrations): serialise it on a session advisory lock.
    # Polled with try-lock: a waiter must not sit in a transaction, because the holder's
    # CREATE INDEX CONCURRENTLY waits for every open transaction (a deadlock otherwise)
    while not (await (await conn.execute(_TRY_LOCK)).fetchone())["locked"]:
        await asyncio.sleep(0.05)
    try:
        await saver.setup()
    except Exception as exc:  # noqa: BLE001 -- any driver error here means the same to a user
        raise CheckpointerError(
            f"cannot set up the checkpoint tables in {safe_url(url)}: "
            f"{scrub(str(exc).splitlines()[0], url)}; check that the user may create tables "
            "(or run `orchestrator db upgrade --db URL` as one who may)"
        ) from None
    finally:
        await conn.execute(_UNLOCK)
    return cast(BaseCheckpointSaver[str], saver)
