"""Exactly one owner per run: every operation that advances a run holds its lease.

`owning(store, run_id, ...)` takes the run's lease in one atomic database operation, keeps it
alive with a heartbeat thread while the body runs, and gives it up afterwards. Whoever does
not get it changes nothing and gets a `RunBusyError` naming the holder. If the heartbeat finds
the lease taken over (this process stalled past its expiry), the body is cancelled at once, as
a crash would stop it, and `LeaseLostError` says so: the new owner continues from the last
checkpoint, so nothing that finished is lost.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orchestrator.storage import DEFAULT_TTL, Heartbeat, Lease, RunStore
from state import InvalidInputError, LeaseLostError, RunBusyError


def lease_ttl(configured: object = None) -> float:
    """Seconds a lease lives without a heartbeat: `lease_ttl` config, else
    `$ORCHESTRATOR_LEASE_TTL`, else 30."""
    raw = configured if configured is not None else os.environ.get("ORCHESTRATOR_LEASE_TTL")
    if raw is None or raw == "":
        return DEFAULT_TTL
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"lease_ttl {raw!r} is not a number of seconds; use e.g. 30 (config `lease_ttl` or "
            "ORCHESTRATOR_LEASE_TTL)"
        ) from None
    if value < 1:
        raise InvalidInputError(f"lease_ttl must be at least 1 second, got {value:g}")
    return value


@asynccontextmanager
async def owning(store: RunStore, run_id: str, *, ttl: float, what: str) -> AsyncIterator[Lease]:
    """Hold `run_id`'s lease while the body runs; `RunBusyError` when someone else holds it.

    `what` names the operation for the message (`resume`, `approve`, ...).
    """
    lease = await asyncio.to_thread(store.leases.acquire, run_id, ttl)
    if lease is None:
        holder = await asyncio.to_thread(store.leases.live, run_id)
        who = holder.describe() if holder is not None else "another process"
        raise RunBusyError(
            f"run '{run_id}' is being advanced by {who} right now, so this {what} changed "
            f"nothing; retry once it stops (watch it with: orchestrator status {run_id} --watch)"
        )
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def lost() -> None:
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)

    heartbeat = Heartbeat(store.leases, lease, ttl, lost)
    try:
        yield lease
    except asyncio.CancelledError:
        if heartbeat.lost:
            if task is not None:
                task.uncancel()  # the cancel was ours, to stop work; it ends as an error
            raise LeaseLostError(
                f"this process lost run '{run_id}': it missed its lease heartbeat for over "
                f"{ttl:g}s and another process took the run over; it stopped at once and "
                "the new owner continues from the last checkpoint"
            ) from None
        raise
    finally:
        await asyncio.to_thread(heartbeat.stop)
        await asyncio.to_thread(store.leases.release, lease)
