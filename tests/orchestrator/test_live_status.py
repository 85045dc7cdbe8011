"""What a run in flight shows: step_results pending/running/retrying/waiting, and the open
approval request in approval_requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator, RunResult, StepContext
from state import AdvancedWorkflow, RunNotFoundError, WorkflowStatus

APPROVAL = AdvancedWorkflow.from_dict(
    {
        "name": "gate",
        "steps": [
            {"step_id": "prepare", "action": "noop"},
            {
                "step_id": "sign",
                "step_type": "human_approval",
                "dependencies": ["prepare"],
                "approval": {"approvers": ["dana"]},
            },
            {"step_id": "ship", "action": "noop", "dependencies": ["sign"]},
        ],
    }
)


async def _until(
    read: Callable[[], Awaitable[RunResult]], step: str, status: str, wait: float = 20.0
) -> RunResult:
    deadline = asyncio.get_running_loop().time() + wait
    seen: dict[str, Any] = {}
    while True:
        try:
            run = await read()
        except RunNotFoundError:  # not started yet
            run = None
        if run is not None:
            seen = run.step_results
            if seen.get(step, {}).get("status") == status:
                return run
        assert asyncio.get_running_loop().time() < deadline, seen
        await asyncio.sleep(0.02)


async def test_waiting_run_shows_pending_waiting_and_the_open_request(make_orch: Any) -> None:
    """While an approval waits: later steps pending, the approval waiting, its request open."""
    registry = ActionRegistry()
    registry.register("noop", lambda: None)
    orch = make_orch(registry)
    run = await orch.execute_workflow(APPROVAL, {})
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    statuses = {sid: r["status"] for sid, r in run.step_results.items()}
    assert statuses == {"prepare": "completed", "sign": "waiting", "ship": "pending"}
    (request,) = run.approval_requests.values()
    assert request["status"] == "open"
    assert request["request_id"] == run.pending_approval["request_id"]
    done = await orch.approve(run.run_id, "dana")
    assert done.status is WorkflowStatus.COMPLETED
    assert done.approval_requests[request["request_id"]]["status"] == "approved"
    assert done.approval_requests[request["request_id"]]["approvals"][0]["approver"] == "dana"


async def test_running_and_retrying_steps_show_while_in_flight(make_orch: Any) -> None:
    """A step is `running` during its attempt and `retrying` while it waits to try again."""
    release_attempt, release_retry = asyncio.Event(), asyncio.Event()

    async def sleep(_seconds: float) -> None:
        await release_retry.wait()

    registry = ActionRegistry()

    @registry.action("work")
    async def work(ctx: StepContext) -> str:
        if ctx.attempt == 1:
            await release_attempt.wait()
            raise ConnectionError("dropped")
        return "ok"

    orch = make_orch(registry, sleep=sleep)
    wf = AdvancedWorkflow.from_dict({"name": "w", "steps": [{"step_id": "s", "action": "work"}]})
    task = asyncio.create_task(orch.execute_workflow(wf, {}, run_id="live-1"))
    await _until(lambda: orch.status("live-1"), "s", "running")
    release_attempt.set()
    await _until(lambda: orch.status("live-1"), "s", "retrying")
    release_retry.set()
    run = await task
    assert run.status is WorkflowStatus.COMPLETED
    assert run.step_results["s"]["status"] == "completed"


async def test_dispatched_steps_are_running_in_the_checkpoint(db_url: str) -> None:
    """Another orchestrator on the same database sees fanned-out steps `running`."""
    release = asyncio.Event()
    registry = ActionRegistry()

    @registry.action("wait")
    async def wait() -> str:
        await release.wait()
        return "done"

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "fan",
            "steps": [
                {"step_id": "a", "action": "wait"},
                {"step_id": "b", "action": "wait"},
                {"step_id": "c", "action": "wait", "dependencies": ["a", "b"]},
            ],
        }
    )
    runner = EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=db_url)
    watcher = EnterpriseWorkflowOrchestrator(checkpointer=db_url)
    task = asyncio.create_task(runner.execute_workflow(wf, {}, run_id="fan-1"))
    try:
        run = await _until(lambda: watcher.status("fan-1"), "a", "running")
        assert run.step_results["b"]["status"] == "running"
        assert run.step_results["c"]["status"] == "pending"
    finally:
        release.set()
        assert (await task).status is WorkflowStatus.COMPLETED
        await runner.aclose()
        await watcher.aclose()
