"""`RunStore`: the project's own tables next to the checkpoints, on SQLite or Postgres.

Checkpoints say where a run stands; the store answers what checkpoints cannot answer cheaply
or across processes: which runs exist, who advances a run right now (its lease), what
lifecycle requests wait for it, and one-time claims. One class over both backends: the SQL is
the same, only the migrations differ by dialect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from orchestrator.storage._leases import Leases
from orchestrator.storage._migrations import Migration, upgrade
from orchestrator.storage._sql import SqlDb, open_db

REQUEST_STRENGTH = {"cancel_compensate": 3, "cancel": 2, "pause": 1}
"""When several lifecycle requests wait, the strongest wins: a cancel is never lost to a pause."""

_RUN_KEYS = (
    "run_id",
    "workflow_id",
    "status",
    "started_at",
    "finished_at",
    "current_steps",
    "deadline",
)


class RunStore:
    """Runs, leases, queued lifecycle requests and claims of one run database.

    Example:
        ```python
        store = RunStore.open("sqlite:///runs.sqlite")     # migrations applied on first use
        lease = store.leases.acquire("run-1", ttl=30)      # None: someone else advances it
        store.request("run-1", "pause", now=time.time())
        ```

    Methods block (briefly): call them with `asyncio.to_thread` from code that shares the
    event loop with a SQLite checkpointer.
    """

    def __init__(self, db: SqlDb, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        """The database."""
        self.leases = Leases(db, clock=clock)
        """Who advances which run."""

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], float] = time.time) -> RunStore:
        """The store of a database URL, its tables created or migrated."""
        db = open_db(url)
        try:
            upgrade(db)
        except BaseException:
            db.close()
            raise
        return cls(db, clock=clock)

    def upgrade(self) -> list[Migration]:
        """Apply missing migrations (idempotent); the ones applied now."""
        return upgrade(self.db)

    def close(self) -> None:
        """Close the connections."""
        self.db.close()

    # -- runs ------------------------------------------------------------------------------

    def record(
        self, run_id: str, values: dict[str, Any], now: float, *, deadline: float | None = None
    ) -> None:
        """Upsert what the latest checkpoint says about a run."""
        self.db.execute(
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
        """Recorded runs, newest first, optionally filtered; each names its lease `holder`."""
        sql = f"SELECT {', '.join(_RUN_KEYS)} FROM orchestrator_runs WHERE 1=1"  # noqa: S608 -- constant columns
        args: list[Any] = []
        if status:
            sql += " AND status = ?"
            args.append(status)
        if workflow_id:
            sql += " AND workflow_id = ?"
            args.append(workflow_id)
        rows = self.db.query(sql + " ORDER BY started_at DESC, run_id", tuple(args))
        holders = self.leases.holders()
        out = [dict(zip(_RUN_KEYS, row, strict=True)) for row in rows]
        for row in out:
            row["current_steps"] = json.loads(row["current_steps"] or "[]")
            lease = holders.get(row["run_id"])
            row["holder"] = lease.describe() if lease is not None else None
        return out

    def mark_detached(self, run_id: str, workflow_id: str, now: float) -> None:
        """Record a run queued for workers (status `pending`); its continuations queue too."""
        self.db.execute(
            "INSERT INTO orchestrator_runs (run_id, workflow_id, status, updated_at, current_steps,"
            " detached) VALUES (?,?,?,?,?,1) ON CONFLICT(run_id) DO UPDATE SET detached=1",
            (run_id, workflow_id, "pending", now, "[]"),
        )

    def is_detached(self, run_id: str) -> bool:
        """True for a run that workers execute (`run --detach`, `submit`)."""
        rows = self.db.query("SELECT detached FROM orchestrator_runs WHERE run_id=?", (run_id,))
        return bool(rows and rows[0][0])

    def row(self, run_id: str) -> dict[str, Any] | None:
        """The run's recorded row, if any."""
        rows = self.db.query(
            f"SELECT {', '.join(_RUN_KEYS)} FROM orchestrator_runs WHERE run_id=?",  # noqa: S608 -- constant columns
            (run_id,),
        )
        return dict(zip(_RUN_KEYS, rows[0], strict=True)) if rows else None

    # -- ownership (the lease) ---------------------------------------------------------------

    def executing_elsewhere(self, run_id: str) -> bool:
        """True while some process holds the run's lease."""
        return self.leases.live(run_id) is not None

    # -- lifecycle requests ------------------------------------------------------------------

    def request(self, run_id: str, request: str, now: float) -> None:
        """Queue a pause or cancel for the process advancing the run (never overwrites one)."""
        if request not in REQUEST_STRENGTH:
            raise ValueError(f"unknown lifecycle request {request!r}")
        self.db.execute(
            "INSERT INTO orchestrator_requests (run_id, request, requested_at) VALUES (?,?,?)",
            (run_id, request, now),
        )

    def pending_request(self, run_id: str) -> str | None:
        """The strongest lifecycle request waiting for this run, if any."""
        rows = self.db.query(
            "SELECT request FROM orchestrator_requests WHERE run_id=? AND done_at IS NULL",
            (run_id,),
        )
        pending = [str(row[0]) for row in rows]
        return max(pending, key=REQUEST_STRENGTH.__getitem__) if pending else None

    def finish_requests(
        self, run_id: str, kinds: Iterable[str] = tuple(REQUEST_STRENGTH), now: float = 0.0
    ) -> int:
        """Mark the run's waiting requests of `kinds` as carried out; how many there were."""
        kinds = tuple(kinds)
        marks = ",".join("?" for _ in kinds)
        return self.db.execute(
            f"UPDATE orchestrator_requests SET done_at=? WHERE run_id=? AND done_at IS NULL"  # noqa: S608 -- placeholders only
            f" AND request IN ({marks})",
            (now or time.time(), run_id, *kinds),
        )

    def clear_request(self, run_id: str) -> None:
        """Mark every waiting request of the run as carried out."""
        self.finish_requests(run_id)

    # -- claims ------------------------------------------------------------------------------

    def claim(self, key: str, now: float) -> bool:
        """Claim `key` once across processes; False when someone already claimed it."""
        changed = self.db.execute(
            "INSERT INTO orchestrator_claims (claim, claimed_at) VALUES (?,?)"
            " ON CONFLICT (claim) DO NOTHING",
            (key, now),
        )
        return changed == 1
