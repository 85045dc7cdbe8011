"""Cancelling the asyncio task that runs a workflow (a notebook's interrupted cell)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from state import AdvancedWorkflow, WorkflowStatus


def _workflow() -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "cancelled-task",
            "retry_policy": {"max_attempts": 1},
            "steps": [
                {"step_id": "first", "action": "quick", "input_mapping": {"name": "'first'"}},
                {
                    "step_id": "block",
                    "action": "block",
                    "input_mapping": {"name": "'block'"},
                    "dependencies": ["first"],
                },
                {
                    "step_id": "last",
                    "action": "quick",
                    "input_mapping": {"name": "'last'"},
                    "dependencies": ["block"],
                },
            ],
        }
    )


async def test_a_cancelled_run_task_closes_at_once_and_resumes(tmp_path: Path) -> None:
    """After the task is cancelled mid-step, `aclose()` returns, and a new orchestrator
    resumes the run to completion with an audit chain that verifies."""
    started = asyncio.Event()
    calls: list[str] = []
    registry = ActionRegistry()

    @registry.action("quick")
    async def quick(name: str) -> dict[str, str]:
        calls.append(name)
        return {"done": name}

    @registry.action("block")
    async def block(name: str) -> dict[str, str]:
        calls.append(name)
        if calls.count(name) == 1:
            started.set()
            await asyncio.Event().wait()  # until cancelled
        return {"done": name}

    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    orch = EnterpriseWorkflowOrchestrator(checkpointer=db, registry=registry)
    task = asyncio.create_task(orch.execute_workflow(_workflow(), {}, run_id="R1"))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    await asyncio.wait_for(orch.aclose(), 10)  # hung forever on deferred audit entries

    again = EnterpriseWorkflowOrchestrator(checkpointer=db, registry=registry)
    try:
        run = await again.resume("R1")
        verified = await again.verify_audit("R1")
    finally:
        await again.aclose()
    assert run.status is WorkflowStatus.COMPLETED
    assert calls == ["first", "block", "block", "last"]
    assert verified.ok, verified.reason
