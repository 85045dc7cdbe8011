"""Top-level action steps run as one DAG task: each starts when its own dependencies end.

Orders are read from what the actions record, never from wall-clock thresholds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator import ActionRegistry, StepContext
from state import AdvancedWorkflow, WorkflowStatus

WAIT = 10.0
"""How long a step waits for a sibling's signal before giving up (only reached on failure)."""


def _workflow(steps: list[dict[str, Any]], **extra: Any) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {"name": "dag", "retry_policy": {"max_attempts": 1}, "steps": steps, **extra}
    )


async def test_fast_branch_starts_before_a_slow_sibling_finishes(make_orch: Any) -> None:
    """A step whose dependency finished starts while an unrelated slow step still runs."""
    registry = ActionRegistry()
    events: list[str] = []
    downstream_started = asyncio.Event()

    @registry.action("slow")
    async def slow() -> dict[str, Any]:
        events.append("slow started")
        try:
            await asyncio.wait_for(downstream_started.wait(), WAIT)
        except TimeoutError:
            events.append("slow gave up waiting")
        events.append("slow finished")
        return {}

    @registry.action("fast")
    async def fast(ctx: StepContext) -> dict[str, Any]:
        events.append(f"{ctx.step_id} started")
        if ctx.step_id == "after_fast":
            downstream_started.set()
        return {}

    workflow = _workflow(
        [
            {"step_id": "slow", "action": "slow"},
            {"step_id": "fast", "action": "fast"},
            {"step_id": "after_fast", "action": "fast", "dependencies": ["fast"]},
            {"step_id": "join", "action": "fast", "dependencies": ["slow", "after_fast"]},
        ]
    )
    run = await make_orch(registry).execute_workflow(workflow)
    assert run.status is WorkflowStatus.COMPLETED, run.error
    assert "slow gave up waiting" not in events, events
    assert events.index("after_fast started") < events.index("slow finished")
    assert events[-1] == "join started"


async def test_dag_task_keeps_max_parallel_steps(make_orch: Any) -> None:
    """No more steps of a DAG task run at once than `max_parallel_steps`."""
    registry = ActionRegistry()
    running: list[int] = [0]
    peak: list[int] = [0]

    @registry.action("work")
    async def work() -> dict[str, Any]:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        for _ in range(5):  # yield so that siblings could start if the cap let them
            await asyncio.sleep(0)
        running[0] -= 1
        return {}

    steps = [{"step_id": f"s{i}", "action": "work"} for i in range(8)]
    steps += [{"step_id": "t", "action": "work", "dependencies": ["s0"]}]
    run = await make_orch(registry).execute_workflow(_workflow(steps, max_parallel_steps=3))
    assert run.status is WorkflowStatus.COMPLETED, run.error
    assert len(run.completed_steps) == 9
    assert 1 <= peak[0] <= 3


async def test_outputs_flow_to_dependents_inside_a_dag_task(make_orch: Any) -> None:
    """A step started inside a DAG task reads the context its dependencies wrote."""
    registry = ActionRegistry()

    @registry.action("emit")
    async def emit(value: int) -> dict[str, Any]:
        return {"value": value}

    @registry.action("add")
    async def add(a: int, b: int) -> dict[str, Any]:
        return {"value": a + b}

    workflow = _workflow(
        [
            {
                "step_id": "x",
                "action": "emit",
                "input_mapping": {"value": "input.x"},
                "output_mapping": {"x": "value"},
            },
            {
                "step_id": "y",
                "action": "emit",
                "input_mapping": {"value": "input.y"},
                "output_mapping": {"y": "value"},
            },
            {
                "step_id": "sum",
                "action": "add",
                "dependencies": ["x", "y"],
                "input_mapping": {"a": "context.x", "b": "results.y.value"},
                "output_mapping": {"total": "value"},
            },
        ]
    )
    run = await make_orch(registry).execute_workflow(workflow, input_data={"x": 2, "y": 40})
    assert run.status is WorkflowStatus.COMPLETED, run.error
    assert run.result is not None
    assert run.result["total"] == 42
    assert run.step_results["sum"]["status"] == "completed"


async def test_failure_stops_the_dag_task_from_starting_more_steps(make_orch: Any) -> None:
    """After a step fails, a step its sibling unblocks does not start; the run fails."""
    registry = ActionRegistry()
    events: list[str] = []
    failed = asyncio.Event()

    @registry.action("boom")
    async def boom() -> dict[str, Any]:
        events.append("boom")
        failed.set()
        raise RuntimeError("declined")

    @registry.action("after_boom")
    async def after_boom(ctx: StepContext) -> dict[str, Any]:
        await asyncio.wait_for(failed.wait(), WAIT)
        await asyncio.sleep(0)  # let the failure be recorded first
        events.append(ctx.step_id)
        return {}

    @registry.action("later")
    async def later() -> dict[str, Any]:
        events.append("later")
        return {}

    workflow = _workflow(
        [
            {"step_id": "boom", "action": "boom"},
            {"step_id": "b", "action": "after_boom"},
            {"step_id": "c", "action": "later", "dependencies": ["b"]},
        ]
    )
    run = await make_orch(registry).execute_workflow(workflow)
    assert run.status is WorkflowStatus.FAILED
    assert "later" not in events, events
    assert set(run.completed_steps) == {"b"}


async def test_pause_during_a_dag_task_stops_before_the_next_step(make_orch: Any) -> None:
    """A pause requested while a DAG task runs stops it before its next step; resume ends it."""
    registry = ActionRegistry()
    events: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    @registry.action("hold")
    async def hold() -> dict[str, Any]:
        started.set()
        await asyncio.wait_for(release.wait(), WAIT)
        events.append("hold")
        return {}

    @registry.action("note")
    async def note(ctx: StepContext) -> dict[str, Any]:
        events.append(ctx.step_id)
        return {}

    workflow = _workflow(
        [
            {"step_id": "hold", "action": "hold"},
            {"step_id": "quick", "action": "note"},
            {"step_id": "next", "action": "note", "dependencies": ["hold"]},
        ]
    )
    orch = make_orch(registry)
    driving = asyncio.create_task(
        orch.execute_workflow(workflow, execution_options={"run_id": "P1"})
    )
    await asyncio.wait_for(started.wait(), WAIT)
    pausing = asyncio.create_task(orch.pause("P1"))
    while await asyncio.to_thread(orch.index.pending_request, "P1") is None:
        await asyncio.sleep(0.01)
    release.set()
    run = await driving
    assert run.status is WorkflowStatus.PAUSED, run.error
    assert (await pausing).status is WorkflowStatus.PAUSED
    assert "next" not in events, events
    resumed = await orch.resume("P1")
    assert resumed.status is WorkflowStatus.COMPLETED, resumed.error
    assert events.count("next") == 1
    assert events.count("hold") == 1


async def test_approvals_ready_together_all_open_past_the_cap(make_orch: Any) -> None:
    """Approvals take no slot: three ready at once all open even at `max_parallel_steps: 1`."""
    registry = ActionRegistry()

    @registry.action("note")
    async def note() -> dict[str, Any]:
        return {}

    approval = {"approvers": ["ann"], "min_approvals": 1}
    workflow = _workflow(
        [
            {"step_id": "a", "action": "note"},
            {"step_id": "b", "action": "note"},
            *(
                {
                    "step_id": f"ok{i}",
                    "step_type": "human_approval",
                    "approval": approval,
                    "dependencies": ["a", "b"],
                }
                for i in range(3)
            ),
        ],
        max_parallel_steps=1,
    )
    run = await make_orch(registry).execute_workflow(workflow)
    assert run.status is WorkflowStatus.WAITING_APPROVAL, run.error
    opened = {r["step_id"] for r in run.approval_requests.values() if r["status"] == "open"}
    assert opened == {"ok0", "ok1", "ok2"}
