"""Detached runs: queued for workers instead of executed by the calling process.

`submit` records the run as `pending` and queues its start; for a detached run, a decision or
a lifecycle command queues the continuation and returns at once; `wait` blocks until the run
is neither pending nor running. The facade delegates here; workers execute the jobs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator._run import RunResult
from orchestrator.workers._queue import RunQueue, ensure_schema, job_states, require_postgres
from state import AdvancedWorkflow, RunId, RunNotFoundError, RunStateError, WorkflowStatus

if TYPE_CHECKING:
    from orchestrator._facade import EnterpriseWorkflowOrchestrator

_UNSETTLED = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.INITIALIZING)


async def submit(
    orch: EnterpriseWorkflowOrchestrator,
    workflow: AdvancedWorkflow,
    input_data: Mapping[str, Any],
    run_id: str | None,
) -> RunResult:
    """Record the run as `pending` and queue its start for a worker."""
    require_postgres(orch.checkpointer_url)
    await orch._open()
    run_id = run_id or uuid.uuid4().hex
    if await asyncio.to_thread(orch.index.row, run_id) is not None:
        raise RunStateError(f"run '{run_id}' already exists; choose another run id")
    await asyncio.to_thread(ensure_schema, orch.checkpointer_url)
    await asyncio.to_thread(orch.index.mark_detached, run_id, workflow.workflow_id, time.time())
    async with RunQueue(orch.checkpointer_url) as queue:
        await queue.defer(run_id, "start", workflow=workflow.to_data(), input=dict(input_data))
    return RunResult(run_id=RunId(run_id), workflow_id=workflow.workflow_id,
                     status=WorkflowStatus.PENDING)  # fmt: skip


async def enqueue(
    orch: EnterpriseWorkflowOrchestrator, run_id: str, op: str, **args: Any
) -> RunResult:
    """Queue a continuation of a detached run; the run as it now stands (`pending`)."""
    async with RunQueue(orch.checkpointer_url) as queue:
        await queue.defer(run_id, op, **args)
    run = await orch.status(run_id)
    # the continuation is queued (a worker may already be at it): say so, unless it ended
    return run if run.status.is_terminal else _with_status(run, WorkflowStatus.PENDING)


async def overlay(
    orch: EnterpriseWorkflowOrchestrator, run_id: str, run: RunResult | None
) -> RunResult | None:
    """A detached run's status with its queue: `pending` while a job waits for a worker,
    `running` while one executes it. None when the run is not detached."""
    if not await asyncio.to_thread(orch.index.is_detached, run_id):
        return run
    states = await asyncio.to_thread(job_states, orch.checkpointer_url, run_id)
    if run is None:
        row = await asyncio.to_thread(orch.index.row, run_id)
        if row is None:
            return None
        status = WorkflowStatus.RUNNING if "doing" in states else WorkflowStatus.PENDING
        return RunResult(RunId(run_id), str(row["workflow_id"] or ""), status)
    if run.status.is_terminal:
        return run
    if "todo" in states and "doing" not in states:
        return _with_status(run, WorkflowStatus.PENDING)
    owner = await asyncio.to_thread(orch.index.leases.live, run_id)
    if "doing" in states or owner is not None:
        return _with_status(run, WorkflowStatus.RUNNING)
    return run


def _with_status(run: RunResult, status: WorkflowStatus) -> RunResult:
    from dataclasses import replace

    return replace(run, status=status)


async def wait(
    orch: EnterpriseWorkflowOrchestrator,
    run_id: str,
    *,
    timeout: float | None = None,
    interval: float = 0.2,
) -> RunResult:
    """Block until the run is neither pending nor running (or `timeout` seconds pass); the
    run as it then stands."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            run = await orch.status(run_id)
        except RunNotFoundError:
            if not await asyncio.to_thread(orch.index.is_detached, run_id):
                raise
            run = None
        if run is not None and run.status not in _UNSETTLED:
            return run
        if deadline is not None and time.monotonic() >= deadline:
            if run is None:
                raise RunNotFoundError(f"no run '{run_id}'")
            return run
        await asyncio.sleep(interval)
