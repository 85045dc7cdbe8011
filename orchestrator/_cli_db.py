"""`orchestrator db upgrade`: create or migrate the run database's tables (idempotent)."""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from orchestrator.storage import (
    LATEST,
    MIGRATIONS,
    Backend,
    RunStore,
    backend_of,
    current_version,
    open_checkpointer,
    open_db,
    safe_url,
)
from orchestrator.workers import ensure_schema


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the `db` command group (`db upgrade`) on the top-level subparsers."""
    db = sub.add_parser("db", help="manage the run database", description="manage the run database")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade",
        parents=[common],
        help="create or migrate the project's and the checkpointer's tables (idempotent)",
        description="Create or migrate the project's tables and the checkpointer's. "
        "Idempotent: running it again, or from two processes at once, changes nothing.",
    )
    upgrade.set_defaults(func=cmd_db_upgrade)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """`db upgrade`: apply missing migrations and the checkpointer's own set-up."""
    db = open_db(args.db)
    try:
        before = current_version(db)
    finally:
        db.close()
    RunStore.open(args.db).close()  # applies what is missing, serialised across processes
    asyncio.run(_checkpointer_setup(args.db))
    if backend_of(args.db) is Backend.POSTGRES:
        ensure_schema(args.db)  # the run queue of workers (procrastinate's tables)
    applied = [m for m in MIGRATIONS if m.version > before]
    if args.json:
        print(
            json.dumps(
                {
                    "db": safe_url(args.db),
                    "version": LATEST,
                    "previous_version": before,
                    "applied": [{"version": m.version, "name": m.name} for m in applied],
                }
            )
        )
    elif applied:
        print(f"{safe_url(args.db)}: schema version {before} -> {LATEST}")
        for m in applied:
            print(f"  applied {m.version}: {m.name}")
    else:
        print(f"{safe_url(args.db)}: schema is up to date (version {LATEST})")
    return 0


async def _checkpointer_setup(url: str) -> None:
    async with AsyncExitStack() as stack:
        await open_checkpointer(url, stack)  # runs the saver's own migrations
