"""Versioned, idempotent migrations of the project's own tables, per SQL dialect.

Applied on first use of a database and by `orchestrator db upgrade --db URL`. Each version
runs once, inside one transaction that also records it in `orchestrator_schema`; concurrent
upgraders serialise on that transaction, so running them twice, or from two processes at
once, changes nothing the second time. Version 1 uses `IF NOT EXISTS` so that databases made
before versioning (session 1's SQLite files) are adopted as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from orchestrator.storage._sql import SqlDb, Tx

_VERSIONS_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS orchestrator_schema ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)",
    "postgres": "CREATE TABLE IF NOT EXISTS orchestrator_schema ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)",
}


@dataclass(frozen=True)
class Migration:
    """One schema version: its number, a name, and its statements per dialect."""

    version: int
    """Applied in increasing order, once."""
    name: str
    """What it does, for `db upgrade` output."""
    sqlite: tuple[str, ...]
    """Statements on SQLite."""
    postgres: tuple[str, ...]
    """Statements on Postgres."""

    def statements(self, dialect: str) -> tuple[str, ...]:
        """The statements for `dialect`."""
        return self.sqlite if dialect == "sqlite" else self.postgres


_APPEND_ONLY_PG = """
CREATE OR REPLACE FUNCTION orchestrator_audit_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'orchestrator_audit is append-only'; END $$ LANGUAGE plpgsql
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, claims and the audit ledger",
        sqlite=(
            "CREATE TABLE IF NOT EXISTS orchestrator_runs (run_id TEXT PRIMARY KEY,"
            " workflow_id TEXT, status TEXT, started_at TEXT, finished_at TEXT, updated_at REAL,"
            " current_steps TEXT, deadline REAL, owner_host TEXT, owner_pid INTEGER)",
            "CREATE TABLE IF NOT EXISTS orchestrator_claims (claim TEXT PRIMARY KEY,"
            " claimed_at REAL)",
            "CREATE TABLE IF NOT EXISTS orchestrator_audit (run_id TEXT NOT NULL,"
            " seq INTEGER NOT NULL, timestamp TEXT NOT NULL, actor TEXT NOT NULL,"
            " event TEXT NOT NULL, step_id TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL,"
            " hash TEXT NOT NULL, dedupe_key TEXT, PRIMARY KEY (run_id, seq))",
            "CREATE INDEX IF NOT EXISTS orchestrator_audit_dedupe ON orchestrator_audit"
            " (run_id, dedupe_key) WHERE dedupe_key IS NOT NULL",
            "CREATE TRIGGER IF NOT EXISTS orchestrator_audit_no_update BEFORE UPDATE ON"
            " orchestrator_audit BEGIN SELECT RAISE(ABORT, 'orchestrator_audit is append-only');"
            " END",
            "CREATE TRIGGER IF NOT EXISTS orchestrator_audit_no_delete BEFORE DELETE ON"
            " orchestrator_audit BEGIN SELECT RAISE(ABORT, 'orchestrator_audit is append-only');"
            " END",
        ),
        postgres=(
            "CREATE TABLE IF NOT EXISTS orchestrator_runs (run_id TEXT PRIMARY KEY,"
            " workflow_id TEXT, status TEXT, started_at TEXT, finished_at TEXT,"
            " updated_at DOUBLE PRECISION, current_steps TEXT, deadline DOUBLE PRECISION)",
            "CREATE TABLE IF NOT EXISTS orchestrator_claims (claim TEXT PRIMARY KEY,"
            " claimed_at DOUBLE PRECISION)",
            "CREATE TABLE IF NOT EXISTS orchestrator_audit (run_id TEXT NOT NULL,"
            " seq INTEGER NOT NULL, timestamp TEXT NOT NULL, actor TEXT NOT NULL,"
            " event TEXT NOT NULL, step_id TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL,"
            " hash TEXT NOT NULL, dedupe_key TEXT, PRIMARY KEY (run_id, seq))",
            "CREATE INDEX IF NOT EXISTS orchestrator_audit_dedupe ON orchestrator_audit"
            " (run_id, dedupe_key) WHERE dedupe_key IS NOT NULL",
            _APPEND_ONLY_PG,
            "DROP TRIGGER IF EXISTS orchestrator_audit_no_change ON orchestrator_audit",
            "CREATE TRIGGER orchestrator_audit_no_change BEFORE UPDATE OR DELETE ON"
            " orchestrator_audit FOR EACH ROW EXECUTE FUNCTION orchestrator_audit_append_only()",
            "DROP TRIGGER IF EXISTS orchestrator_audit_no_truncate ON orchestrator_audit",
            "CREATE TRIGGER orchestrator_audit_no_truncate BEFORE TRUNCATE ON orchestrator_audit"
            " FOR EACH STATEMENT EXECUTE FUNCTION orchestrator_audit_append_only()",
        ),
    ),
    Migration(
        2,
        "run leases and queued lifecycle requests",
        sqlite=(
            "CREATE TABLE IF NOT EXISTS orchestrator_leases (run_id TEXT PRIMARY KEY,"
            " holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
            " acquired_at REAL NOT NULL, heartbeat_at REAL NOT NULL, expires_at REAL NOT NULL,"
            " takeovers INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE IF NOT EXISTS orchestrator_requests (id INTEGER PRIMARY KEY"
            " AUTOINCREMENT, run_id TEXT NOT NULL, request TEXT NOT NULL,"
            " requested_at REAL NOT NULL, done_at REAL)",
            "CREATE INDEX IF NOT EXISTS orchestrator_requests_open ON orchestrator_requests"
            " (run_id) WHERE done_at IS NULL",
            # session 1 kept one overwritable request per run: carry any over, then drop it
            "CREATE TABLE IF NOT EXISTS orchestrator_control (run_id TEXT PRIMARY KEY,"
            " request TEXT NOT NULL, requested_at REAL)",
            "INSERT INTO orchestrator_requests (run_id, request, requested_at)"
            " SELECT run_id, request, COALESCE(requested_at, 0) FROM orchestrator_control",
            "DROP TABLE orchestrator_control",
        ),
        postgres=(
            "CREATE TABLE IF NOT EXISTS orchestrator_leases (run_id TEXT PRIMARY KEY,"
            " holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
            " acquired_at DOUBLE PRECISION NOT NULL, heartbeat_at DOUBLE PRECISION NOT NULL,"
            " expires_at DOUBLE PRECISION NOT NULL, takeovers INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE IF NOT EXISTS orchestrator_requests (id BIGSERIAL PRIMARY KEY,"
            " run_id TEXT NOT NULL, request TEXT NOT NULL,"
            " requested_at DOUBLE PRECISION NOT NULL, done_at DOUBLE PRECISION)",
            "CREATE INDEX IF NOT EXISTS orchestrator_requests_open ON orchestrator_requests"
            " (run_id) WHERE done_at IS NULL",
        ),
    ),
    Migration(
        3,
        "step cache",
        sqlite=(
            "CREATE TABLE IF NOT EXISTS orchestrator_step_cache (key TEXT PRIMARY KEY,"
            " value TEXT NOT NULL, stored_at REAL NOT NULL, expires_at REAL NOT NULL)",
        ),
        postgres=(
            "CREATE TABLE IF NOT EXISTS orchestrator_step_cache (key TEXT PRIMARY KEY,"
            " value TEXT NOT NULL, stored_at DOUBLE PRECISION NOT NULL,"
            " expires_at DOUBLE PRECISION NOT NULL)",
        ),
    ),
    Migration(
        4,
        "detached runs (executed by workers)",
        sqlite=("ALTER TABLE orchestrator_runs ADD COLUMN detached INTEGER NOT NULL DEFAULT 0",),
        postgres=(
            "ALTER TABLE orchestrator_runs ADD COLUMN IF NOT EXISTS detached INTEGER NOT NULL"
            " DEFAULT 0",
        ),
    ),
)
"""Every schema version, oldest first. Append new ones; never edit a released one."""

LATEST = MIGRATIONS[-1].version
"""The schema version this code expects."""


def current_version(db: SqlDb) -> int:
    """The newest version applied to `db` (0: none, or no version table yet)."""
    try:
        rows = db.query("SELECT MAX(version) FROM orchestrator_schema")
    except Exception:  # noqa: BLE001 -- "no such table" differs per driver; it means version 0
        return 0
    return int(rows[0][0] or 0) if rows else 0


def upgrade(db: SqlDb) -> list[Migration]:
    """Apply every migration `db` lacks, in order; the ones applied now (none: up to date)."""
    if current_version(db) >= LATEST:
        return []
    applied: list[Migration] = []
    with db.transaction(lock="orchestrator_schema") as tx:
        tx.execute(_VERSIONS_TABLE[db.dialect])
        done = {int(row[0]) for row in tx.query("SELECT version FROM orchestrator_schema")}
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            _apply(tx, db.dialect, migration)
            applied.append(migration)
    return applied


def _apply(tx: Tx, dialect: str, migration: Migration) -> None:
    for statement in migration.statements(dialect):
        tx.execute(statement)
    tx.execute(
        "INSERT INTO orchestrator_schema (version, name, applied_at) VALUES (?,?,?)",
        (migration.version, migration.name, time.time()),
    )
