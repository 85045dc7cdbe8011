"""Run leases: which process advances a run right now, taken in one atomic operation.

A lease has a holder (a token unique to one acquisition), the holder's host and pid, a
heartbeat and an expiry. It is free when no row exists, when it expired, or when its holder
ran on this host and that process is gone (PID liveness is a shortcut that only holds on one
host; other hosts wait for the expiry). Taking it is a compare-and-swap inside one write
transaction, so of several processes that try at once exactly one gets it.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from orchestrator.storage._sql import SqlDb

HOST = os.environ.get("ORCHESTRATOR_HOST_ID") or socket.gethostname()
"""This machine's name in leases (`$ORCHESTRATOR_HOST_ID` overrides it, e.g. per container)."""

_log = structlog.get_logger("orchestrator")

DEFAULT_TTL = 30.0
"""Seconds a lease lives without a heartbeat (`lease_ttl` / `$ORCHESTRATOR_LEASE_TTL`)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A run's lease as stored."""

    run_id: str
    """The run it is for."""
    holder: str
    """Token of the acquisition that holds it (`host:pid:random`)."""
    host: str
    """Host of the holding process."""
    pid: int
    """Pid of the holding process."""
    acquired_at: float
    """When it was taken (epoch seconds)."""
    expires_at: float
    """When it lapses unless renewed."""
    takeovers: int = 0
    """How many times this run's lease was taken over from a dead or silent holder."""

    def describe(self) -> str:
        """`process 1234 on host-a` for messages."""
        return f"process {self.pid} on {self.host}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_live(lease: Lease, now: float) -> bool:
    """True while the lease binds: not expired, and its holder is not a dead local process."""
    if lease.expires_at <= now:
        return False
    return lease.host != HOST or _alive(lease.pid)


_COLUMNS = "run_id, holder, host, pid, acquired_at, expires_at, takeovers"


class Leases:
    """Atomic run leases in a `SqlDb`."""

    def __init__(self, db: SqlDb, *, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    def get(self, run_id: str) -> Lease | None:
        """The run's lease row, live or not (None: never taken or released)."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM orchestrator_leases WHERE run_id=?",  # noqa: S608 -- constant columns
            (run_id,),
        )
        return Lease(*rows[0]) if rows else None

    def live(self, run_id: str) -> Lease | None:
        """The run's lease if it binds now, else None."""
        lease = self.get(run_id)
        return lease if lease is not None and is_live(lease, self._clock()) else None

    def acquire(self, run_id: str, ttl: float) -> Lease | None:
        """Take the run's lease for `ttl` seconds; None when a live holder has it."""
        holder = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        now = self._clock()
        with self._db.transaction(lock=f"lease:{run_id}") as tx:
            rows = tx.query(
                f"SELECT {_COLUMNS} FROM orchestrator_leases WHERE run_id=?",  # noqa: S608 -- constant columns
                (run_id,),
            )
            if not rows:
                changed = tx.execute(
                    "INSERT INTO orchestrator_leases (run_id, holder, host, pid, acquired_at,"
                    " heartbeat_at, expires_at, takeovers) VALUES (?,?,?,?,?,?,?,0)"
                    " ON CONFLICT (run_id) DO NOTHING",
                    (run_id, holder, HOST, os.getpid(), now, now, now + ttl),
                )
                takeovers = 0
            else:
                current = Lease(*rows[0])
                if is_live(current, now):
                    return None
                takeovers = current.takeovers + 1
                changed = tx.execute(
                    "UPDATE orchestrator_leases SET holder=?, host=?, pid=?, acquired_at=?,"
                    " heartbeat_at=?, expires_at=?, takeovers=? WHERE run_id=? AND holder=?",
                    (
                        holder,
                        HOST,
                        os.getpid(),
                        now,
                        now,
                        now + ttl,
                        takeovers,
                        run_id,
                        current.holder,
                    ),
                )
        if changed != 1:
            return None
        return Lease(run_id, holder, HOST, os.getpid(), now, now + ttl, takeovers)

    def renew(self, lease: Lease, ttl: float) -> bool:
        """Extend a held lease; False when it was lost (taken over after it expired)."""
        now = self._clock()
        changed = self._db.execute(
            "UPDATE orchestrator_leases SET heartbeat_at=?, expires_at=? WHERE run_id=? AND"
            " holder=?",
            (now, now + ttl, lease.run_id, lease.holder),
        )
        return changed == 1

    def release(self, lease: Lease) -> None:
        """Give the lease up (a no-op when it was lost meanwhile)."""
        self._db.execute(
            "DELETE FROM orchestrator_leases WHERE run_id=? AND holder=?",
            (lease.run_id, lease.holder),
        )

    def holders(self) -> dict[str, Lease]:
        """Every live lease by run id."""
        now = self._clock()
        rows = self._db.query(f"SELECT {_COLUMNS} FROM orchestrator_leases")  # noqa: S608 -- constant columns
        leases = (Lease(*row) for row in rows)
        return {lease.run_id: lease for lease in leases if is_live(lease, now)}


class Heartbeat:
    """Renews a lease from a thread of its own until stopped; calls `on_lost` if it is lost.

    A thread, not a task: a busy event loop (a long sync step) must not let the lease lapse.
    """

    def __init__(
        self, leases: Leases, lease: Lease, ttl: float, on_lost: Callable[[], None]
    ) -> None:
        self._leases, self._lease, self._ttl, self._on_lost = leases, lease, ttl, on_lost
        self._stop = threading.Event()
        self.lost = False
        """True once a renewal found the lease taken by someone else."""
        self._thread = threading.Thread(
            target=self._beat, name=f"orchestrator-lease-{lease.run_id[:8]}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                held = self._leases.renew(self._lease, self._ttl)
            except Exception as exc:  # noqa: BLE001 -- a database hiccup: the next beat tries again
                _log.warning("lease_renewal_failed", run_id=self._lease.run_id, error=str(exc))
                continue
            if not held:
                self.lost = True
                self._on_lost()
                return

    def stop(self) -> None:
        """Stop renewing (the caller releases the lease)."""
        self._stop.set()
        self._thread.join(timeout=5)
