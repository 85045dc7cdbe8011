"""`GroupCommitSqliteSaver`: LangGraph's async SQLite saver with one commit per superstep.

LangGraph saves a superstep in pieces: `aput_writes` once per task that finished, then `aput`
for the next checkpoint, which it calls only once those writes are saved (a checkpoint may
rely on them). The stock `AsyncSqliteSaver` commits each piece on its own, and our audit
ledger committed a step's entries on a third connection: three fsyncs per step.

Here a task's writes (and the audit entries its node chained, `store_entries`) are queued,
and `aput_writes` returns once they are queued. The next `aput` commits everything queued and
its checkpoint in one transaction, in queue order, on aiosqlite's thread (one hop instead of
one per statement). So writes are never on disk later than a checkpoint that relies on them,
the audit entries are on disk together with the `audit_head` that names them, and a
sequential step costs one commit. A task's error or interrupt (a superstep that ends without
a checkpoint) is committed at once, with every write queued before it, before `aput_writes`
returns (LangGraph waits for it before it ends the run). Writes of a task that finished while
its siblings still run are committed on their own after `linger` seconds, and at once by
every read, by `drain()` and on close: a finished task's writes survive a crash unless it
strikes within `linger` of the task finishing, the same window in which a stock save of them
can still be in flight. With `durability="sync"` the
next superstep starts only once its checkpoint (and so every write before it) is committed,
so a step that finished is never lost and never re-run.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from orchestrator.storage._ledger_db import Rechain, Record, insert_records
from orchestrator.storage._sql import _SqliteTx

Job = Callable[[sqlite3.Connection], None]
"""One save: statements run inside the shared transaction."""
Done = Callable[[BaseException | None], None]
"""Told, on the event loop, that a queued save was committed (None) or failed."""

LINGER = 0.005
"""Seconds a task's writes wait for the checkpoint that ends their superstep before they are
committed on their own: long enough for a sequential step (well under a millisecond apart),
short enough that a task finishing beside slower siblings is on disk almost at once."""

_SETTLING = frozenset(WRITES_IDX_MAP)
"""LangGraph's special channels (error, interrupt, resume, scheduled): such a write can end a
superstep with no checkpoint after it."""

_PUT_CHECKPOINT = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_WRITE_COLUMNS = (
    "writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, "
    "type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(eq=False)
class _Queue:
    """What a saver and its copies share (LangGraph copies savers, `with_allowlist`)."""

    jobs: list[tuple[Job, Done]] = field(default_factory=list)
    committer: asyncio.Task[None] | None = None
    waiting: asyncio.Future[None] | None = None
    urgent: bool = False
    failure: Exception | None = None
    loop: asyncio.AbstractEventLoop | None = None
    commits: int = 0
    lazy: set[int] = field(default_factory=set)
    """Ids of the queued jobs nobody waits for (task writes)."""

    def urgent_in(self, batch: list[tuple[Job, Done]]) -> bool:
        """True when a caller waits for some job of `batch` (and so hears its error)."""
        return any(id(job) not in self.lazy for job, _ in batch)


class GroupCommitSqliteSaver(AsyncSqliteSaver):
    """An `AsyncSqliteSaver` that commits a superstep's writes with its checkpoint.

    Reads, listing, deletion and the schema are LangGraph's own (each commits what is
    queued first); `aput_writes` queues and `aput` commits. Use it like the stock saver:

    ```python
    async with aiosqlite.connect("runs.sqlite") as conn:
        saver = GroupCommitSqliteSaver(conn)
        graph = builder.compile(checkpointer=saver)
        await graph.ainvoke(inputs, {"configurable": {"thread_id": "run-1"}})
        await saver.drain()  # before closing `conn`: nothing queued is left behind
    ```
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        serde: SerializerProtocol | None = None,
        path: Path | None = None,
        linger: float = LINGER,
    ) -> None:
        super().__init__(conn, serde=serde)
        self.linger = linger
        """Seconds queued writes wait for the checkpoint that follows them."""
        self.path = path.resolve() if path is not None else None
        """The database file, so that a ledger on the same file can share its commits."""
        self._q = _Queue()

    @property
    def commits(self) -> int:
        """Transactions this saver committed (a figure for benchmarks and tests)."""
        return self._q.commits

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,  # noqa: ARG002 -- SQLite stores whole checkpoints
    ) -> RunnableConfig:
        """Save a checkpoint; returns once it and everything queued before it are committed."""
        await self.setup()
        self._raise_failure()
        thread_id = config["configurable"]["thread_id"]
        checkpoint_ns = config["configurable"]["checkpoint_ns"]
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        row = (
            str(thread_id),
            checkpoint_ns,
            checkpoint["id"],
            config["configurable"].get("checkpoint_id"),
            type_,
            blob,
            meta.encode("utf-8", "ignore"),
        )
        await self._committed(_statement(_PUT_CHECKPOINT, [row]))
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Queue a task's writes for the next commit (see the module docstring)."""
        # special channels (errors, interrupts, resumes) replace: a task re-saves them
        verb = "REPLACE" if all(w[0] in WRITES_IDX_MAP for w in writes) else "IGNORE"
        query = f"INSERT OR {verb} INTO {_WRITE_COLUMNS}"
        await self.setup()
        configurable = config["configurable"]
        rows = [
            (
                str(configurable["thread_id"]),
                str(configurable["checkpoint_ns"]),
                str(configurable["checkpoint_id"]),
                task_id,
                task_path,
                WRITES_IDX_MAP.get(channel, idx),
                channel,
                *self.serde.dumps_typed(value),
            )
            for idx, (channel, value) in enumerate(writes)
        ]
        if not any(channel in _SETTLING for channel, _ in writes):
            self._enqueue(_statement(query, rows), self._lazy_done, urgent=False)
            return
        # an error or interrupt ends the superstep without a checkpoint: commit it (and the
        # finished siblings' writes queued before it) before LangGraph ends the run
        await self._committed(_statement(query, rows))

    def store_entries(self, records: list[Record], rechain: Rechain, done: Done) -> bool:
        """Queue audit entries for the next commit; `done` is told, on the event loop, how
        it went. False (nothing queued) when called off the loop this saver commits on."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._q.loop is not None and running is not self._q.loop:
            return False

        def job(conn: sqlite3.Connection) -> None:
            insert_records(_SqliteTx(conn), records, rechain)

        self._enqueue(job, done, urgent=False)
        return True

    async def drain(self) -> None:
        """Commit every queued save now and wait for it (reads do it first; so does close)."""
        while (committer := self._q.committer) is not None:
            self._hurry()
            await asyncio.shield(committer)
        self._raise_failure()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """LangGraph's read, after committing what is queued (read your own writes)."""
        await self.drain()
        return await super().aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """LangGraph's listing, after committing what is queued."""
        await self.drain()
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """LangGraph's delta-channel read, after committing what is queued."""
        await self.drain()
        return await super().aget_delta_channel_history(config=config, channels=channels)

    async def adelete_thread(self, thread_id: str) -> None:
        """LangGraph's deletion, after committing what is queued (nothing is left behind)."""
        await self.drain()
        await super().adelete_thread(thread_id)

    def _lazy_done(self, error: BaseException | None) -> None:
        if isinstance(error, Exception) and self._q.failure is None:
            self._q.failure = error  # raised by the next checkpoint save, read or drain

    def _raise_failure(self) -> None:
        if (failure := self._q.failure) is not None:
            self._q.failure = None
            raise failure

    async def _committed(self, job: Job) -> None:
        """Queue `job` and commit the queue now; returns once it is on disk."""
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(error: BaseException | None) -> None:
            if finished.done():
                return  # the caller was cancelled; the save itself went on
            if error is None:
                finished.set_result(None)
            elif isinstance(error, Exception):
                finished.set_exception(error)
            else:
                finished.cancel()  # the loop is shutting down

        self._enqueue(job, done, urgent=True)
        await finished

    def _enqueue(self, job: Job, done: Done, *, urgent: bool) -> None:
        q = self._q
        q.loop = asyncio.get_running_loop()
        q.jobs.append((job, done))
        if not urgent:
            q.lazy.add(id(job))
        if q.committer is None:
            q.committer = q.loop.create_task(self._commit_queued(), name="saver-commit")
        if urgent:
            self._hurry()

    def _hurry(self) -> None:
        q = self._q
        q.urgent = True
        if q.waiting is not None and not q.waiting.done():
            q.waiting.set_result(None)

    async def _commit_queued(self) -> None:
        q = self._q
        batch: list[tuple[Job, Done]] = []
        try:
            while q.jobs:
                if not q.urgent:
                    # writes and audit entries wait (at most `linger`) for the checkpoint
                    # LangGraph saves once the superstep's last task is done
                    loop = asyncio.get_running_loop()
                    q.waiting = loop.create_future()
                    timer = loop.call_later(self.linger, self._hurry)
                    try:
                        await q.waiting
                    finally:
                        timer.cancel()
                        q.waiting = None
                q.urgent = False
                batch = q.jobs[:]
                del q.jobs[:]
                urgent = q.urgent_in(batch)
                q.lazy.difference_update(id(job) for job, _ in batch)
                try:
                    async with self.lock:
                        error = await self._on_thread([job for job, _ in batch])
                except Exception as exc:  # noqa: BLE001 -- handed to every save of the batch
                    error = exc
                for _, done in batch:
                    done(error)
                if error is not None and q.failure is error and urgent:
                    q.failure = None  # a waiting save already raised it
                batch = []
        except BaseException as exc:  # cancelled: no save may wait forever
            for _, done in [*batch, *q.jobs]:
                done(exc)
            del q.jobs[:]
            raise
        finally:
            q.committer = None

    async def _on_thread(self, jobs: list[Job]) -> Exception | None:
        # aiosqlite runs functions on its thread only through `_execute` (every public
        # method uses it); one hop for the whole transaction instead of one per statement
        run: Callable[..., Any] = self.conn._execute
        error: Exception | None = await run(self._commit, jobs)
        return error

    def _commit(self, jobs: list[Job]) -> Exception | None:
        """On aiosqlite's thread: all `jobs` in one transaction. They stand or fall together:
        a checkpoint must never be on disk without the writes queued before it."""
        conn: sqlite3.Connection = self.conn._conn
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")  # the write lock before reading audit heads
            for job in jobs:
                job(conn)
            conn.commit()
        except Exception as exc:  # noqa: BLE001 -- returned to every save of the batch
            conn.rollback()
            return exc
        self._q.commits += 1
        return None


def _statement(sql: str, rows: list[tuple[Any, ...]]) -> Job:
    def job(conn: sqlite3.Connection) -> None:
        conn.executemany(sql, rows)

    return job
