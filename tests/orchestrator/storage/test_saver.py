"""`GroupCommitSqliteSaver` against what LangGraph's own saver tests expect, on real files."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointMetadata,
    create_checkpoint,
    empty_checkpoint,
)

from orchestrator import AuditLedger
from orchestrator.storage import GroupCommitSqliteSaver, serializer


@pytest.fixture
async def saver(tmp_path: Path) -> AsyncIterator[GroupCommitSqliteSaver]:
    """Our saver on a fresh SQLite file (WAL), as the orchestrator opens it."""
    path = tmp_path / "runs.sqlite"
    async with aiosqlite.connect(str(path)) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        opened = GroupCommitSqliteSaver(conn, serde=serializer(), path=path)
        await opened.setup()
        yield opened
        await opened.drain()


def _config(thread: str, checkpoint_id: str | None = None, ns: str = "") -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _checkpoint(previous: Checkpoint | None = None, step: int = 0) -> Checkpoint:
    return create_checkpoint(previous or empty_checkpoint(), None, step)


def _meta(source: str, step: int, **more: Any) -> CheckpointMetadata:
    return {"source": source, "step": step, **more}  # type: ignore[typeddict-item]


def _shallow(saver: GroupCommitSqliteSaver) -> GroupCommitSqliteSaver:
    """A shallow copy, as `BaseCheckpointSaver.with_allowlist` makes."""
    return copy.copy(saver)


def _rows(saver: GroupCommitSqliteSaver, sql: str) -> list[tuple[Any, ...]]:
    """Rows as another connection sees them: only what is committed."""
    assert saver.path is not None
    with sqlite3.connect(saver.path) as conn:
        return conn.execute(sql).fetchall()


async def test_put_then_get_returns_latest_and_by_id(saver: GroupCommitSqliteSaver) -> None:
    """`aget_tuple` returns the latest checkpoint, or the one named, with its parent."""
    first = _checkpoint()
    saved = await saver.aput(_config("t"), first, _meta("input", -1), {})
    second = _checkpoint(first, 1)
    await saver.aput(saved, second, _meta("loop", 0), {})
    latest = await saver.aget_tuple(_config("t"))
    assert latest is not None
    assert latest.checkpoint["id"] == second["id"]
    assert latest.parent_config is not None
    assert latest.parent_config["configurable"]["checkpoint_id"] == first["id"]
    named = await saver.aget_tuple(_config("t", first["id"]))
    assert named is not None
    assert named.checkpoint["id"] == first["id"]
    assert named.metadata["source"] == "input"
    assert await saver.aget_tuple(_config("other")) is None


async def test_put_writes_become_pending_writes(saver: GroupCommitSqliteSaver) -> None:
    """Writes saved for a checkpoint come back as its pending writes, in task order."""
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    await saver.aput_writes(saved, [("a", 1), ("b", {"x": 2})], "task-1")
    await saver.aput_writes(saved, [("a", 3)], "task-2")
    found = await saver.aget_tuple(saved)
    assert found is not None
    assert found.pending_writes == [
        ("task-1", "a", 1),
        ("task-1", "b", {"x": 2}),
        ("task-2", "a", 3),
    ]


async def test_regular_writes_keep_the_first_special_writes_the_last(
    saver: GroupCommitSqliteSaver,
) -> None:
    """A task's regular write is saved once; its error write is replaced (as LangGraph's)."""
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    await saver.aput_writes(saved, [("a", 1)], "task")
    await saver.aput_writes(saved, [("a", 2)], "task")
    await saver.aput_writes(saved, [("__error__", "first")], "task")
    await saver.aput_writes(saved, [("__error__", "second")], "task")
    found = await saver.aget_tuple(saved)
    assert found is not None
    assert ("task", "a", 1) in found.pending_writes
    assert ("task", "a", 2) not in found.pending_writes
    assert [v for _, c, v in found.pending_writes if c == "__error__"] == ["second"]


async def test_list_filters_by_metadata_before_and_limit(saver: GroupCommitSqliteSaver) -> None:
    """`alist` filters on metadata keys, pages with `before` and stops at `limit`."""
    first, second, third = _checkpoint(), _checkpoint(step=1), _checkpoint(step=2)
    await saver.aput(_config("t"), first, _meta("input", -1, score=1), {})
    await saver.aput(_config("t"), second, _meta("loop", 0, score=1), {})
    await saver.aput(_config("t"), third, _meta("loop", 1, score=2), {})
    await saver.aput(_config("u"), _checkpoint(), _meta("loop", 0), {})

    async def ids(config: RunnableConfig | None, **kw: Any) -> list[str]:
        return [item.checkpoint["id"] async for item in saver.alist(config, **kw)]

    assert await ids(_config("t")) == [third["id"], second["id"], first["id"]]
    assert await ids(_config("t"), filter={"source": "input"}) == [first["id"]]
    assert await ids(_config("t"), filter={"source": "loop", "score": 1}) == [second["id"]]
    assert await ids(_config("t"), filter={"source": "update"}) == []
    assert len(await ids(None, filter={"source": "loop"})) == 3
    assert await ids(_config("t"), before=_config("t", third["id"])) == [second["id"], first["id"]]
    assert await ids(_config("t"), limit=1) == [third["id"]]


async def test_metadata_takes_run_metadata_but_not_private_keys(
    saver: GroupCommitSqliteSaver,
) -> None:
    """Config metadata is merged into the checkpoint's; `__`-prefixed configurable keys are not."""
    config: RunnableConfig = {
        "configurable": {"thread_id": "t", "checkpoint_ns": "", "__secret": "hidden"},
        "metadata": {"run_id": "my-run"},
    }
    saved = await saver.aput(config, _checkpoint(), _meta("input", -1), {})
    found = await saver.aget_tuple(saved)
    assert found is not None
    assert found.metadata.get("run_id") == "my-run"
    assert "__secret" not in found.metadata


async def test_delete_thread_removes_its_checkpoints_and_writes(
    saver: GroupCommitSqliteSaver,
) -> None:
    """`adelete_thread` removes one thread's checkpoints and queued writes, no other's."""
    kept = await saver.aput(_config("keep"), _checkpoint(), _meta("input", -1), {})
    gone = await saver.aput(_config("gone"), _checkpoint(), _meta("input", -1), {})
    await saver.aput_writes(gone, [("a", 1)], "task")  # still queued when deletion starts
    await saver.adelete_thread("gone")
    assert await saver.aget_tuple(_config("gone")) is None
    assert _rows(saver, "SELECT count(*) FROM writes WHERE thread_id='gone'") == [(0,)]
    assert await saver.aget_tuple(kept) is not None


async def test_writes_and_checkpoint_share_one_commit(saver: GroupCommitSqliteSaver) -> None:
    """A task's writes wait for the checkpoint that follows them: one commit for both."""
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    before = saver.commits
    await saver.aput_writes(saved, [("a", 1)], "task")
    await saver.aput(saved, _checkpoint(step=1), _meta("loop", 0), {})
    assert saver.commits == before + 1
    assert _rows(saver, "SELECT count(*) FROM writes") == [(1,)]
    assert _rows(saver, "SELECT count(*) FROM checkpoints") == [(2,)]


async def test_writes_without_a_checkpoint_commit_after_linger(
    saver: GroupCommitSqliteSaver,
) -> None:
    """Writes no checkpoint follows are on disk within `linger`, without any read."""
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    await saver.aput_writes(saved, [("a", 1)], "task")
    assert _rows(saver, "SELECT count(*) FROM writes") == [(0,)]
    await asyncio.sleep(saver.linger * 10)
    assert _rows(saver, "SELECT count(*) FROM writes") == [(1,)]


async def test_error_writes_commit_before_put_writes_returns(
    saver: GroupCommitSqliteSaver,
) -> None:
    """A task's error ends a superstep: it and the writes queued before it are on disk at once."""
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    await saver.aput_writes(saved, [("a", 1)], "finished-task")
    await saver.aput_writes(saved, [("__error__", "boom")], "failed-task")
    assert _rows(saver, "SELECT task_id, channel FROM writes ORDER BY task_id") == [
        ("failed-task", "__error__"),
        ("finished-task", "a"),
    ]


async def test_failed_commit_stores_neither_checkpoint_nor_its_writes(
    saver: GroupCommitSqliteSaver,
) -> None:
    """When the shared transaction fails, the checkpoint is not stored without its writes."""
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    await saver.aput_writes(saved, [("a", 1)], "task")
    assert saver.path is not None
    with sqlite3.connect(saver.path) as other:
        other.execute(
            "CREATE TRIGGER no_writes BEFORE INSERT ON writes "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        await saver.aput(saved, _checkpoint(step=1), _meta("loop", 0), {})
    assert _rows(saver, "SELECT count(*) FROM checkpoints") == [(1,)]


async def test_copies_share_one_queue(saver: GroupCommitSqliteSaver) -> None:
    """LangGraph's copies of a saver (`with_allowlist`) queue into the same transaction."""
    twin = _shallow(saver)
    assert twin is not saver
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    before = saver.commits
    await twin.aput_writes(saved, [("a", 1)], "task")
    await saver.aput(saved, _checkpoint(step=1), _meta("loop", 0), {})
    assert saver.commits == before + 1
    assert _rows(saver, "SELECT count(*) FROM writes") == [(1,)]


async def test_audit_entries_share_the_checkpoint_commit(saver: GroupCommitSqliteSaver) -> None:
    """A ledger on the same file commits a node's entries with the following checkpoint."""
    assert saver.path is not None
    ledger = AuditLedger.open(saver.path)
    assert ledger.attach(saver)
    saved = await saver.aput(_config("t"), _checkpoint(), _meta("input", -1), {})
    before = saver.commits
    ledger.append("t", event="step_started", step_id="s", defer=True)
    head = ledger.head("t")
    await saver.aput_writes(saved, [("audit_head", head)], "task")
    assert _rows(saver, "SELECT count(*) FROM orchestrator_audit") == [(0,)]
    await saver.aput(saved, _checkpoint(step=1), _meta("loop", 0), {})
    assert saver.commits == before + 1
    assert _rows(saver, "SELECT hash FROM orchestrator_audit") == [(head,)]
    assert ledger.verify("t", expected_head=head).ok
    ledger.detach(saver)
    ledger.close()


async def test_ledger_refuses_a_saver_on_another_file(
    saver: GroupCommitSqliteSaver, tmp_path: Path
) -> None:
    """A ledger only shares commits with a saver on its own database file."""
    ledger = AuditLedger.open(tmp_path / "elsewhere.sqlite")
    assert not ledger.attach(saver)
    ledger.close()
