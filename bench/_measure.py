"""The measuring harness: checkpoint storage, repeated interleaved runs, table rows."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """How long one run took."""

    wall: float
    """Elapsed seconds."""
    cpu: float
    """CPU seconds of this process, all threads (aiosqlite's included): unlike wall time, it
    barely moves when other processes compete for the cores."""
    inner: float | None = None
    """A second wall time the benchmark reports (the container step's own duration)."""
    commits: int | None = None
    """SQLite transactions the run committed, when the benchmark counted them itself."""


async def timed(work: Awaitable[T]) -> tuple[Timing, T]:
    """Await `work` and time it."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), result


RunOnce = Callable[[Path], Awaitable[Timing]]
"""One timed run against a fresh database path."""


@dataclass
class Rows:
    """What one run left in its checkpoint database."""

    checkpoints: int = 0
    writes: int = 0
    write_batches: int = 0
    """`aput_writes` calls: one per task that finished, each its own commit."""
    checkpoint_bytes: int = 0
    write_bytes: int = 0
    audit_entries: int = 0
    """Rows of our audit ledger."""
    counted_commits: int | None = None
    """Transactions the run counted as it committed them (ours: the saver's shared commits
    plus the audit ledger's own)."""

    @property
    def commits(self) -> int:
        """SQLite transactions the run committed: as counted, else one per checkpoint and one
        per write batch (LangGraph's stock saver)."""
        if self.counted_commits is not None:
            return self.counted_commits
        return self.checkpoints + self.write_batches


@dataclass
class Sample:
    """Repeated timings of one benchmark, in seconds."""

    times: list[float]
    """Wall seconds per run."""
    cpu: list[float] = field(default_factory=list)
    """CPU seconds per run."""
    inner: list[float] = field(default_factory=list)
    """The benchmark's second wall time per run, when it reports one."""
    rows: Rows = field(default_factory=Rows)

    @property
    def median(self) -> float:
        """Median of the repeats."""
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        """Fastest repeat: the cost with the least interference from other processes."""
        return min(self.times)


def db_rows(path: Path) -> Rows:
    """Row counts and sizes in a checkpoint database."""
    with sqlite3.connect(path) as conn:
        checkpoints, cbytes = conn.execute(
            "select count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0) "
            "from checkpoints"
        ).fetchone()
        writes, batches, wbytes = conn.execute(
            "select count(*), count(distinct checkpoint_id || task_id), "
            "coalesce(sum(length(value)), 0) from writes"
        ).fetchone()
        tables = {name for (name,) in conn.execute("select name from sqlite_master")}
        audit = (
            conn.execute("select count(*) from orchestrator_audit").fetchone()[0]
            if "orchestrator_audit" in tables
            else 0
        )
    return Rows(int(checkpoints), int(writes), int(batches), int(cbytes), int(wbytes), int(audit))


@asynccontextmanager
async def sqlite_saver(path: Path, *, synchronous: str | None = None) -> AsyncIterator[Any]:
    """An AsyncSqliteSaver opened like ours (WAL, busy_timeout); `synchronous` is a what-if."""
    async with aiosqlite.connect(str(path), timeout=30) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        if synchronous:
            await conn.execute(f"PRAGMA synchronous={synchronous}")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield saver


@asynccontextmanager
async def saver_for(path: Path, storage: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """`sqlite` (like ours), `sqlite-normal` (synchronous=NORMAL), `sqlite-default`
    (`AsyncSqliteSaver.from_conn_string`: rollback journal, no WAL) or `memory`."""
    if storage == "memory":
        yield InMemorySaver()
        return
    if storage == "sqlite-default":
        async with AsyncSqliteSaver.from_conn_string(str(path)) as default_saver:
            yield default_saver
        return
    synchronous = "NORMAL" if storage == "sqlite-normal" else None
    async with sqlite_saver(path, synchronous=synchronous) as saver:
        yield saver


async def measure(runs: dict[str, RunOnce], repeats: int) -> dict[str, Sample]:
    """Warm each benchmark up once, then run them round-robin `repeats` times.

    Interleaving spreads load from other processes over every benchmark alike, so ratios
    stay meaningful on a busy machine. Each run gets a fresh database file.
    """
    samples = {name: Sample([]) for name in runs}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for i in range(repeats + 1):
            for n, (name, run_once) in enumerate(runs.items()):
                path = Path(tmp) / f"run{i}-{n}.sqlite"
                timing = await run_once(path)
                if i == 0:
                    continue  # warm-up: imports, schema caches, the workflow parse cache
                sample = samples[name]
                sample.times.append(timing.wall)
                sample.cpu.append(timing.cpu)
                if timing.inner is not None:
                    sample.inner.append(timing.inner)
                if path.exists():
                    sample.rows = db_rows(path)
                    sample.rows.counted_commits = timing.commits
                    path.unlink()
    return samples


def row(*cells: str, widths: tuple[int, ...] = (52, 22, 22, 0)) -> str:
    """One line of a fixed-width table."""
    return "".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()
