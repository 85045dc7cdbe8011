"""The collector leaves the objects a process keeps for its lifetime alone."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from orchestrator._gc import freeze_long_lived
from state import AdvancedWorkflow, WorkflowStatus


async def test_first_open_freezes_what_the_process_holds(
    make_orch: Callable[..., EnterpriseWorkflowOrchestrator],
) -> None:
    """Once an orchestrator has opened, the imported modules and the compiled graph are in
    the collector's permanent generation, and later calls freeze nothing more."""
    registry = ActionRegistry()

    @registry.action("noop")
    async def noop() -> dict[str, Any]:
        return {}

    workflow = AdvancedWorkflow.from_dict(
        {"name": "gc", "steps": [{"step_id": "a", "action": "noop"}]}
    )
    run = await make_orch(registry).execute_workflow(workflow, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert gc.get_freeze_count() > 0
    assert freeze_long_lived() is False
