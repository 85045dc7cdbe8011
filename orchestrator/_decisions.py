"""Approve, reject and sweep: the bodies of the orchestrator's decision methods."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from langgraph.types import Command

from orchestrator._approvals import choose_request, decision, expired
from orchestrator._run import RunResult
from orchestrator.workers import _detached as detached
from state import RunBusyError, RunStateError, WorkflowStatus

if TYPE_CHECKING:
    from orchestrator._facade import EnterpriseWorkflowOrchestrator


async def sweep(orch: EnterpriseWorkflowOrchestrator) -> list[RunResult]:
    """Decide every approval waiting past its deadline by its `on_timeout` policy.

    Safe to run repeatedly and from several processes at once: a run is swept under its
    lease (a run someone else advances right now is left for later), so exactly one
    sweeper decides each expired request.
    """
    await orch._open()
    decided: list[RunResult] = []
    rows = await asyncio.to_thread(orch.index.runs, status=WorkflowStatus.WAITING_APPROVAL.value)
    for row in rows:
        try:
            run = await sweep_one(orch, row["run_id"])
        except RunBusyError:
            continue  # its owner is at it right now; the next sweep looks again
        if run is not None:
            decided.append(run)
    return decided


async def sweep_one(orch: EnterpriseWorkflowOrchestrator, run_id: str) -> RunResult | None:
    async with orch._owning(run_id, "sweep"):
        snapshot, run, workflow = await orch._snapshot(run_id)
        if run.status is not WorkflowStatus.WAITING_APPROVAL:
            return None
        now = orch._clock()
        resume: dict[str, Any] = {}
        for pending, _deadline in expired(snapshot.interrupts, now):
            resume[pending.id] = decision("timeout", "system:sweep", None, now)
            orch.hooks.on_approval(
                workflow_id=run.workflow_id,
                run_id=run_id,
                step_id=pending.value["step_id"],
                event="timed_out",
                actor="system:sweep",
                on_timeout=pending.value.get("on_timeout"),
            )
        if not resume:
            return None
        return await orch._drive(run_id, workflow, Command(resume=resume))


async def decide(
    orch: EnterpriseWorkflowOrchestrator,
    run_id: str,
    approver: str,
    kind: str,
    comment: str | None,
    request_id: str | None,
) -> RunResult:
    snapshot, run, _ = await orch._snapshot(run_id)  # RunNotFoundError before any lease
    if await orch._queued(run_id):
        await check_decision(orch, run_id, snapshot, run, approver, request_id)
        return await detached.enqueue(
            orch, run_id, kind, approver=approver, comment=comment, request_id=request_id
        )
    async with orch._owning(run_id, kind):
        snapshot, run, workflow = await orch._snapshot(run_id)
        target = await check_decision(orch, run_id, snapshot, run, approver, request_id)
        now = orch._clock()
        value = decision(kind, approver, comment, now)
        # past the deadline the node applies on_timeout instead of this decision
        late = bool(expired([target], now))
        orch.hooks.on_approval(
            workflow_id=run.workflow_id,
            run_id=run_id,
            step_id=target.value["step_id"],
            event="timed_out" if late else "approved" if kind == "approve" else "rejected",
            actor=approver,
            comment=comment,
            request_id=target.value["request_id"],
        )
        return await orch._drive(run_id, workflow, Command(resume={target.id: value}))


async def check_decision(
    orch: EnterpriseWorkflowOrchestrator,
    run_id: str,
    snapshot: Any,
    run: RunResult,
    approver: str,
    request_id: str | None,
) -> Any:
    """The pending request `approver` may decide; `RunStateError` when none."""
    if await asyncio.to_thread(orch.index.pending_request, run_id) == "pause":
        raise RunStateError(f"run '{run_id}' is paused; resume it before deciding approvals")
    if run.status is not WorkflowStatus.WAITING_APPROVAL:
        raise RunStateError(f"run '{run_id}' is {run.status.value}, not waiting for an approval")
    return choose_request(snapshot.interrupts, run_id, approver, request_id)
