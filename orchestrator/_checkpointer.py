"""The checkpointer factory: `memory`, `sqlite:///path` (default) or `postgresql://...`."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from state import CheckpointerError

DEFAULT_DB = "sqlite:///.orchestrator/runs.sqlite"
"""Where runs live when nothing else is said: a SQLite file under the current directory."""

ALLOWED_MODULES: tuple[tuple[str, str], ...] = tuple(
    ("state._enums", name) for name in ("WorkflowStatus", "StepStatus", "StepType", "OnTimeout")
)
"""Our types the serializer may revive; checkpoints normally hold plain data only."""


def default_db() -> str:
    """`$ORCHESTRATOR_DB`, or the SQLite file under `.orchestrator/`."""
    return os.environ.get("ORCHESTRATOR_DB") or DEFAULT_DB


def serializer() -> JsonPlusSerializer:
    """The checkpoint serializer with the project's types allowed."""
    return JsonPlusSerializer(allowed_msgpack_modules=ALLOWED_MODULES)


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` url."""
    return Path(url.removeprefix("sqlite:///"))


async def open_checkpointer(url: str, stack: AsyncExitStack) -> BaseCheckpointSaver[str]:
    """Open the saver for `url`; resources are closed with `stack`."""
    if url in ("memory", "memory://"):
        return InMemorySaver(serde=serializer())
    if url.startswith("sqlite:///"):
        return await _open_sqlite(sqlite_path(url), stack)
    if url.startswith(("postgresql://", "postgres://")):
        return await _open_postgres(url, stack)
    raise CheckpointerError(
        f"unknown checkpointer url {url!r}; use `memory`, `sqlite:///path/runs.sqlite` or "
        "`postgresql://user@host/db`"
    )


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
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        saver = AsyncSqliteSaver(conn, serde=serializer())
        await saver.setup()
    except (OSError, aiosqlite.Error) as exc:
        raise CheckpointerError(
            f"cannot open the run database {path}: {exc}; pass a writable location with "
            "--db sqlite:///path/runs.sqlite or set ORCHESTRATOR_DB"
        ) from exc
    return saver


async def _open_postgres(url: str, stack: AsyncExitStack) -> BaseCheckpointSaver[str]:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise CheckpointerError(
            "a postgresql:// checkpointer needs `pip install langgraph-checkpoint-postgres "
            "psycopg[binary]`"
        ) from None
    try:
        saver = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(url))
        saver.serde = serializer()
        await saver.setup()
    except Exception as exc:  # psycopg raises many types; all mean the same to the user
        raise CheckpointerError(f"cannot open the run database {url}: {exc}") from exc
    return cast(BaseCheckpointSaver[str], saver)
