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
sequential step costs one commit. Writes no checkpoint follows (a task that finished while
its siblings still run, a failing or interrupted superstep) are committed on their own after
`linger` seconds, and at once by every read, by `drain()` and on close: a finished task's
writes survive a crash unless it strikes within `linger` of the task finishing, the same
window in which a stock save of them can still be in flight. With `durability="sync"` the
next superstep starts only once its checkpoint (and so every write before it) is committed,
so a step that finished is never lost and never re-run.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
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

_PUT_CHECKPOINT = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_WRITE_COLUMNS = (
    "writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, "
    "type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class GroupCommitSqliteSaver(AsyncSqliteSaver):
    """An `AsyncSqliteSaver` whose saves of one event-loop turn share one transaction.

    Reads, listing, deletion and the schema are LangGraph's own; only `aput` and
    `aput_writes` are queued. Use it like the stock saver:

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
        """Seconds task writes wait for the checkpoint that follows them."""
        self.path = path.resolve() if path is not None else None
        """The database file, so that a ledger on the same file can share its commits."""
        self.commits = 0
        """Transactions this saver committed (a figure for benchmarks and tests)."""
        self._queue: list[tuple[Job, Done]] = []
        self._committer: asyncio.Task[None] | None = None
        self._waiting: asyncio.Future[None] | None = None
        self._failure: Exception | None = None
        self._urgent = False
        self._loop: asyncio.AbstractEventLoop | None = None

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
        await self._save(_statement(_PUT_CHECKPOINT, [row]), urgent=True)
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
        self._loop = asyncio.get_running_loop()
        self._queue.append((_statement(query, rows), self._lazy_done))
        self._wake(urgent=False)

    def store_entries(self, records: list[Record], rechain: Rechain, done: Done) -> bool:
        """Queue audit entries into the next commit; `done` is told how it went.

        False (nothing queued) when called off the event loop this saver commits on.
        """
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._loop is not None and running is not self._loop:
            return False
        self._loop = running

        def job(conn: sqlite3.Connection) -> None:
            insert_records(_SqliteTx(conn), records, rechain)

        self._queue.append((job, done))
        self._wake(urgent=False)
        return True

    async def drain(self) -> None:
        """Commit every queued save now and wait for it (reads do it first; so does close)."""
        while self._committer is not None:
            self._hurry()
            await asyncio.shield(self._committer)
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
        if isinstance(error, Exception) and self._failure is None:
            self._failure = error  # raised by the next checkpoint save or drain

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    async def _save(self, job: Job, *, urgent: bool) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        finished: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            if finished.done():
                return  # the caller was cancelled; the save itself still went through
            if error is None:
                finished.set_result(None)
            elif isinstance(error, Exception):
                finished.set_exception(error)
            else:
                finished.cancel()  # the loop is shutting down

        self._queue.append((job, done))
        self._wake(urgent=urgent)
        await finished

    def _wake(self, *, urgent: bool) -> None:
        if self._committer is None:
            self._committer = asyncio.get_running_loop().create_task(
                self._commit_queued(), name="orchestrator-saver-commit"
            )
        if urgent:
            self._hurry()

    def _hurry(self) -> None:
        self._urgent = True
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)

    async def _commit_queued(self) -> None:
        batch: list[tuple[Job, Done]] = []
        try:
            while self._queue:
                if not self._urgent:
                    # writes and audit entries wait (at most `linger`) for the checkpoint
                    # LangGraph saves once the superstep's last task is done
                    loop = asyncio.get_running_loop()
                    self._waiting = loop.create_future()
                    timer = loop.call_later(self.linger, self._hurry)
                    try:
                        await self._waiting
                    finally:
                        timer.cancel()
                        self._waiting = None
                self._urgent = False
                batch, self._queue = self._queue, []
                try:
                    async with self.lock:
                        errors = await self._on_thread([job for job, _ in batch])
                except Exception as exc:  # noqa: BLE001 -- handed to every waiting save
                    errors = [exc] * len(batch)
                for (_, done), error in zip(batch, errors, strict=True):
                    done(error)
                batch = []
        except BaseException as exc:  # cancelled: no save may wait forever
            for _, done in [*batch, *self._queue]:
                done(exc)
            self._queue = []
            raise
        finally:
            self._committer = None

    async def _on_thread(self, jobs: list[Job]) -> list[Exception | None]:
        # aiosqlite runs functions on its thread only through `_execute` (every public
        # method uses it); one hop for the whole transaction instead of one per statement
        run: Callable[..., Any] = self.conn._execute
        errors: list[Exception | None] = await run(self._commit, jobs)
        return errors

    def _commit(self, jobs: list[Job]) -> list[Exception | None]:
        """On aiosqlite's thread: all `jobs` in one transaction. They stand or fall together:
        a checkpoint must never be on disk without the writes queued before it."""
        try:
            self._transaction(self.conn._conn, jobs)
        except Exception as exc:  # noqa: BLE001 -- returned to every save of the batch
            return [exc] * len(jobs)
        return [None] * len(jobs)

    def _transaction(self, conn: sqlite3.Connection, jobs: list[Job]) -> None:
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading audit heads
        try:
            for job in jobs:
                job(conn)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        self.commits += 1


def _statement(sql: str, rows: list[tuple[Any, ...]]) -> Job:
    def job(conn: sqlite3.Connection) -> None:
        conn.executemany(sql, rows)

    return job
