"""Storage: the run database (checkpoints, runs, leases, requests, audit ledger) on SQLite
or Postgres, chosen by URL: `memory`, `sqlite:///path` (the default) or `postgresql://...`."""

from orchestrator.storage._checkpointer import ALLOWED_MODULES, open_checkpointer, serializer
from orchestrator.storage._leases import DEFAULT_TTL, Heartbeat, Lease, Leases, is_live
from orchestrator.storage._migrations import LATEST, MIGRATIONS, Migration, current_version, upgrade
from orchestrator.storage._saver import GroupCommitSqliteSaver
from orchestrator.storage._sql import PostgresDb, SqlDb, SqliteDb, open_db
from orchestrator.storage._store import RunStore
from orchestrator.storage._url import (
    DEFAULT_DB,
    POSTGRES_EXTRA,
    Backend,
    backend_of,
    default_db,
    safe_url,
    sqlite_path,
)

__all__ = [
    "ALLOWED_MODULES",
    "DEFAULT_DB",
    "DEFAULT_TTL",
    "LATEST",
    "MIGRATIONS",
    "POSTGRES_EXTRA",
    "Backend",
    "GroupCommitSqliteSaver",
    "Heartbeat",
    "Lease",
    "Leases",
    "Migration",
    "PostgresDb",
    "RunStore",
    "SqlDb",
    "SqliteDb",
    "backend_of",
    "current_version",
    "default_db",
    "is_live",
    "open_checkpointer",
    "open_db",
    "safe_url",
    "serializer",
    "sqlite_path",
    "upgrade",
]
