"""Pause, cancel and rollback: the bodies of the orchestrator's lifecycle methods."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from nodes import compensation_plan
from orchestrator._rollback import rollback_point
from orchestrator._run import RunResult
from orchestrator.workers import _detached as detached
from state import AdvancedWorkflow, RunBusyError, RunStateError, WorkflowStatus, unpack

if TYPE_CHECKING:
    from orchestrator._facade import EnterpriseWorkflowOrchestrator


async def queue_request(
    orch: EnterpriseWorkflowOrchestrator, run_id: str, request: str, wait: float = 30.0
) -> RunResult:
    """Queue a lifecycle request; carry it out here when nobody advances the run, else
    wait (briefly) for the owner to honour it at its next step boundary.

    Requests queue rather than overwrite, and the strongest waiting one wins: a pause
    and a cancel sent together end the run cancelled."""
    _, run, _ = await orch._snapshot(run_id)
    if run.status.is_terminal:
        raise RunStateError(f"run '{run_id}' is already {run.status.value}")
    await asyncio.to_thread(orch.index.request, run_id, request, orch._clock())
    if await orch._queued(run_id):  # a worker honours it; queue a job for an idle run
        if request != "pause":
            return await detached.enqueue(orch, run_id, "cancel")
        return await orch.status(run_id)
    deadline = time.monotonic() + wait
    while True:
        run = await orch.status(run_id)
        if run.status.is_terminal or (request == "pause" and run.status is WorkflowStatus.PAUSED):
            return run
        owner = await asyncio.to_thread(orch.index.leases.live, run_id)
        if owner is None and request != "pause":
            try:
                return await carry_out(orch, run_id)
            except RunBusyError:
                pass  # someone took the run meanwhile: it honours the request instead
        if time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.05)


async def carry_out(orch: EnterpriseWorkflowOrchestrator, run_id: str) -> RunResult:
    """Apply the strongest waiting cancel to a run nobody advances."""
    async with orch._owning(run_id, "cancel"):
        _, run, workflow = await orch._snapshot(run_id)
        request = await asyncio.to_thread(orch.index.pending_request, run_id)
        if run.status.is_terminal or request is None:
            return run
        await asyncio.to_thread(orch.index.clear_request, run_id)
        graph = await orch._open()
        await graph.aupdate_state(
            orch._config(run_id, workflow),
            {"control": request, "status": WorkflowStatus.RUNNING.value},
            as_node="error_recovery",
        )
        return await orch._drive(run_id, workflow, None)


async def rollback(orch: EnterpriseWorkflowOrchestrator, run_id: str, to: str) -> RunResult:
    """Compensate the steps completed after rollback point `to` (newest first), restore the
    run to the checkpoint taken just before that step, and leave it paused there."""
    snapshot, _, _ = await orch._snapshot(run_id)  # RunNotFoundError before any lease
    if await orch._queued(run_id):
        rollback_point(snapshot.values, to)  # an unknown point is refused here, at once
        return await detached.enqueue(orch, run_id, "rollback", to=to)
    async with orch._owning(run_id, "rollback"):
        snapshot, _, workflow = await orch._snapshot(run_id)
        point = rollback_point(snapshot.values, to)
        plan = compensation_plan(
            workflow,
            unpack(snapshot.values).get("completed_steps", []),
            snapshot.values.get("compensations", {}),
            since=point["completed"],
        )
        graph = await orch._open()
        await graph.aupdate_state(
            orch._config(run_id, workflow),
            {
                "status": WorkflowStatus.ROLLBACK.value,
                "compensation_plan": plan,
                "outcome_after_compensation": WorkflowStatus.PAUSED.value,
                "rollback_to": to,
                "control": None,
            },
            as_node="error_recovery",
        )
        return await orch._drive(run_id, workflow, None)


async def rollback_due(orch: EnterpriseWorkflowOrchestrator, run_id: str) -> bool:
    snapshot, _, _ = await orch._snapshot(run_id)
    values = snapshot.values
    return bool(values.get("rollback_to")) and values.get("compensation_plan") is None


async def restore(
    orch: EnterpriseWorkflowOrchestrator, run_id: str, workflow: AdvancedWorkflow
) -> RunResult:
    """Time travel: fork the run from the checkpoint before its rollback point, paused."""
    snapshot, _, _ = await orch._snapshot(run_id)
    orch._last_to = str(snapshot.values["rollback_to"])
    point = rollback_point(snapshot.values, orch._last_to)
    graph = await orch._open()
    config = orch._config(run_id, workflow)
    config["configurable"].update(checkpoint_ns="", checkpoint_id=point["checkpoint_id"])
    await graph.aupdate_state(
        config,
        {
            "status": WorkflowStatus.PAUSED.value,
            "control": None,
            "rollback_to": None,
            "rollback_count": int(snapshot.values.get("rollback_count", 0)) + 1,
        },
        as_node="error_recovery",
    )
    return await orch.status(run_id)
