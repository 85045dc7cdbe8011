"""Many runs of one orchestrator at once, on one SQLite file."""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, WorkflowStatus


async def test_concurrent_runs_complete_with_intact_audit(make_orch: Any) -> None:
    """Eight runs awaited together all complete, each with its own intact audit chain."""
    registry = ActionRegistry()

    @registry.action("work")
    async def work(i: int) -> dict[str, int]:
        await asyncio.sleep(0.005)
        return {"i": i}

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "many",
            "steps": [
                {
                    "step_id": f"s{i}",
                    "action": "work",
                    "input_mapping": {"i": f"`{i}`"},
                    "dependencies": [f"s{i - 1}"] if i else [],
                }
                for i in range(6)
            ],
        }
    )
    orch = make_orch(registry)
    runs = await asyncio.gather(*(orch.execute_workflow(wf, {}) for _ in range(8)))
    assert [r.status for r in runs] == [WorkflowStatus.COMPLETED] * 8
    assert len({r.run_id for r in runs}) == 8
    for run in runs:
        assert (await orch.verify_audit(run.run_id)).ok
