"""Parallel containers and loops through the public contract."""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, WorkflowStatus


def _workers_registry(active: list[int] | None = None) -> ActionRegistry:
    registry = ActionRegistry()
    state = {"now": 0}

    @registry.action("work")
    async def work(n: int) -> dict[str, int]:
        state["now"] += 1
        if active is not None:
            active.append(state["now"])
        await asyncio.sleep(0.01)
        state["now"] -= 1
        return {"n": n * 10}

    @registry.action("broken")
    async def broken(n: int = 0) -> None:
        raise ValueError(f"worker {n} broke")

    return registry


def _container(n_ok: int, n_bad: int, threshold: float | None = None) -> AdvancedWorkflow:
    children = [
        {
            "step_id": f"ok{i}",
            "step_type": "worker",
            "action": "work",
            "input_mapping": {"n": f"`{i}`"},
        }
        for i in range(n_ok)
    ]
    children += [
        {"step_id": f"bad{i}", "step_type": "worker", "action": "broken"} for i in range(n_bad)
    ]
    step: dict[str, Any] = {
        "step_id": "fan",
        "step_type": "parallel",
        "parallel_steps": children,
        "output_mapping": {"summary": "@"},
    }
    if threshold is not None:
        step["retry_policy"] = {"parallel_failure_threshold": threshold}
    return AdvancedWorkflow.from_dict(
        {"name": "par", "retry_policy": {"max_attempts": 1}, "steps": [step]}
    )


async def test_parallel_output_has_seed_result_shape(make_orch: Any) -> None:
    """A container's output reports totals, success rate, results and failures."""
    run = await make_orch(_workers_registry()).execute_workflow(_container(3, 1), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    summary = run.result["summary"]
    assert summary["total_steps"] == 4
    assert summary["successful_steps"] == 3
    assert summary["failed_steps"] == 1
    assert summary["success_rate"] == 0.75
    assert summary["results"]["ok2"] == {"n": 20}
    assert "worker 0 broke" in summary["failures"]["bad0"]


async def test_parallel_below_threshold_fails_the_step(make_orch: Any) -> None:
    """Success rate under the threshold fails the container and the run."""
    run = await make_orch(_workers_registry()).execute_workflow(_container(1, 1, 1.0), {})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["step_id"] == "fan"
    assert "below parallel_failure_threshold 100%" in run.error["message"]


async def test_parallel_at_threshold_succeeds(make_orch: Any) -> None:
    """Success rate equal to the threshold counts as success (default threshold 0.5)."""
    run = await make_orch(_workers_registry()).execute_workflow(_container(1, 1), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert "bad0" in run.failed_steps


async def test_parallel_respects_max_parallel_steps(make_orch: Any) -> None:
    """No more than max_parallel_steps children run at the same time."""
    active: list[int] = []
    wf = AdvancedWorkflow.from_dict({**_container(12, 0).to_data(), "max_parallel_steps": 3})
    run = await make_orch(_workers_registry(active)).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert max(active) == 3


def _loop(
    condition: str, limit: int, start: dict[str, Any]
) -> tuple[AdvancedWorkflow, ActionRegistry]:
    registry = ActionRegistry()

    @registry.action("bump")
    async def bump(count: int | None) -> dict[str, int]:
        return {"count": (count or 0) + 1}

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "loop",
            "steps": [
                {
                    "step_id": "repeat",
                    "step_type": "loop",
                    "loop_condition": condition,
                    "loop_max_iterations": limit,
                    "output_mapping": {"loop": "@"},
                    "body": [
                        {
                            "step_id": "inc",
                            "action": "bump",
                            "input_mapping": {"count": "context.count"},
                            "output_mapping": {"count": "count"},
                        }
                    ],
                }
            ],
        }
    )
    return wf, registry


async def test_loop_stops_when_condition_turns_false(make_orch: Any) -> None:
    """The body repeats while the condition holds."""
    wf, registry = _loop("context.count < 3", 10, {})
    run = await make_orch(registry).execute_workflow(wf, {"count": 0})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["count"] == 3
    assert run.result["loop"]["stopped_by"] == "condition"
    assert run.step_results["repeat"]["iterations"] == 3


async def test_loop_stops_at_iteration_limit_with_flag(make_orch: Any) -> None:
    """A condition that never turns false stops at loop_max_iterations and flags it."""
    wf, registry = _loop("context.count < 100", 4, {})
    run = await make_orch(registry).execute_workflow(wf, {"count": 0})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["count"] == 4
    assert run.result["loop"]["stopped_by"] == "limit"
    assert "loop_limit_reached" in run.compliance_flags


async def test_loop_condition_false_at_start_runs_nothing(make_orch: Any) -> None:
    """A condition that is already false (on set values) runs no iteration."""
    wf, registry = _loop("context.count < 3", 10, {})
    run = await make_orch(registry).execute_workflow(wf, {"count": 5})
    assert run.result is not None
    assert run.result["count"] == 5
    assert run.result["loop"]["iterations"] == 0


async def test_loop_reading_unset_value_runs_first_iteration(make_orch: Any) -> None:
    """A condition on a value the body produces runs once before judging it."""
    wf, registry = _loop("context.count < 2", 10, {})
    run = await make_orch(registry).execute_workflow(wf, {})
    assert run.result is not None
    assert run.result["count"] == 2
    assert run.result["loop"]["iterations"] == 2


async def test_loop_body_failure_fails_the_loop(make_orch: Any) -> None:
    """A body step that fails stops the loop and fails the run, naming the iteration."""
    registry = ActionRegistry()

    @registry.action("boom")
    async def boom() -> None:
        raise RuntimeError("no")

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "lf",
            "retry_policy": {"max_attempts": 1},
            "steps": [
                {
                    "step_id": "l",
                    "step_type": "loop",
                    "loop_condition": "true",
                    "body": [{"step_id": "b", "action": "boom"}],
                }
            ],
        }
    )
    run = await make_orch(registry).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "iteration 1" in run.error["message"]


async def test_step_level_threshold_shortcut(make_orch: Any) -> None:
    """`parallel_failure_threshold` on the step itself overrides the default 0.5."""
    data = _container(1, 1).to_data()
    data["steps"][0]["parallel_failure_threshold"] = 1.0
    run = await make_orch(_workers_registry()).execute_workflow(
        AdvancedWorkflow.from_dict(data), {}
    )
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "below parallel_failure_threshold 100%" in run.error["message"]
