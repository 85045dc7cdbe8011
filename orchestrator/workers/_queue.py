"""The run queue: procrastinate jobs in the run's Postgres database.

A job advances one run: `start` (a detached run's first drive), `resume`, `approve`,
`reject`, `rollback`, `cancel` or `deadline` (an approval's deadline, deferred to fire then).
Every job carries the run id as its procrastinate `lock`, so jobs of one run never overlap
(and the run's lease guards every other process). Deferring needs no worker code: tasks are
named, so the CLI queues jobs without importing the worker.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from orchestrator.storage import POSTGRES_EXTRA, Backend, backend_of, open_db, safe_url
from state import CheckpointerError, InvalidInputError

TASK = "orchestrator.advance"
"""The task every run job runs."""
RECOVER = "orchestrator.recover"
"""The periodic task that re-enqueues runs whose owner died."""
QUEUE = "runs"
"""The procrastinate queue of run jobs."""
OPS = ("start", "resume", "approve", "reject", "rollback", "cancel", "deadline")
"""What a job may do to its run."""


def require_postgres(url: str) -> None:
    """Workers share one Postgres database; anything else gets a clear error."""
    if backend_of(url) is not Backend.POSTGRES:
        raise InvalidInputError(
            f"detached runs and workers need a Postgres run database that every worker "
            f"shares, and {safe_url(url)} is not one; pass --db postgresql://user@host/db "
            "(or set ORCHESTRATOR_DB)"
        )


def make_app(url: str) -> Any:
    """A procrastinate `App` on the database `url` (not opened)."""
    require_postgres(url)
    try:
        import procrastinate
    except ImportError:
        raise CheckpointerError(
            f"workers need procrastinate, part of the Postgres extra; run `{POSTGRES_EXTRA}`"
        ) from None
    connector = procrastinate.PsycopgConnector(conninfo=url)
    return procrastinate.App(connector=connector)


def ensure_schema(url: str) -> bool:
    """Create procrastinate's tables once (idempotent, safe from several processes); True if
    they were created now."""
    try:
        from procrastinate.schema import SchemaManager
    except ImportError:
        return False  # without the extra there is no queue to set up
    db = open_db(url)
    try:
        with db.transaction(lock="orchestrator_procrastinate_schema") as tx:
            exists = tx.query("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")[0][0]
            if exists:
                return False
            tx.execute(SchemaManager.get_schema())
            return True
    finally:
        db.close()


class RunQueue:
    """Defers run jobs and reads their state; open it with `async with`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.app = make_app(url)
        self._opened = False

    async def __aenter__(self) -> RunQueue:
        await self.app.open_async()
        self._opened = True
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.app.close_async()

    async def defer(self, run_id: str, op: str, *, at: float | None = None, **args: Any) -> int:
        """Queue job `op` for the run (at epoch `at`, else now); its job id."""
        if op not in OPS:
            raise ValueError(f"unknown run job {op!r}; use one of {', '.join(OPS)}")
        options: dict[str, Any] = {"lock": run_id, "queue": QUEUE}
        if at is not None:
            options["schedule_at"] = datetime.fromtimestamp(at, UTC)
        task = self.app.configure_task(name=TASK, **options)
        job_id: int = await task.defer_async(run_id=run_id, op=op, args=args)
        return job_id

    async def defer_once(
        self, run_id: str, op: str, key: str, *, lock: bool = True, **kw: Any
    ) -> int | None:
        """Like `defer`, but at most one unfinished job per `key` (None: one is queued).

        `lock=False` for a job deferred far ahead (an approval deadline): a procrastinate
        lock makes every later job of the run wait for it; the run's lease still guards it."""
        from procrastinate.exceptions import AlreadyEnqueued

        options: dict[str, Any] = {"queue": QUEUE, "queueing_lock": key}
        if lock:
            options["lock"] = run_id
        if kw.get("at") is not None:
            options["schedule_at"] = datetime.fromtimestamp(kw.pop("at"), UTC)
        kw.pop("at", None)
        task = self.app.configure_task(name=TASK, **options)
        try:
            job_id: int = await task.defer_async(run_id=run_id, op=op, args=kw)
        except AlreadyEnqueued:
            return None
        return job_id


def job_states(url: str, run_id: str) -> set[str]:
    """Statuses (`todo`, `doing`) of the run's unfinished jobs that are due now."""
    db = open_db(url)
    try:
        rows = db.query(
            "SELECT status::text FROM procrastinate_jobs WHERE lock = ? AND status IN"
            " ('todo', 'doing') AND (scheduled_at IS NULL OR scheduled_at <= now()"
            " OR status = 'doing') AND task_name = ?",
            (run_id, TASK),
        )
    except Exception:  # noqa: BLE001 -- no queue tables yet: nothing is queued
        return set()
    finally:
        db.close()
    return {str(r[0]) for r in rows}


def now() -> float:
    """Wall clock for scheduling."""
    return time.time()
