"""Scheduling through the public contract: order, routing, skipping, completion, deadlock."""

from __future__ import annotations

from typing import Any

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, WorkflowStatus


def _registry(log: list[str]) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("record")
    async def record(name: str, value: Any = None) -> dict[str, Any]:
        log.append(name)
        return {"name": name, "value": value}

    @registry.action("fail")
    async def fail(name: str = "x") -> None:
        log.append(name)
        raise RuntimeError(f"{name} broke")

    return registry


def _step(sid: str, deps: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "step_id": sid,
        "action": "record",
        "input_mapping": {"name": f"'{sid}'"},
        "dependencies": deps or [],
        **extra,
    }


async def test_sequential_steps_run_in_dependency_order(make_orch: Any) -> None:
    """Steps run after their dependencies, whatever their order in the definition."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {"name": "seq", "steps": [_step("c", ["b"]), _step("a"), _step("b", ["a"])]}
    )
    run = await make_orch(_registry(log)).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert log == ["a", "b", "c"]
    assert run.completed_steps == ["a", "b", "c"]


async def test_result_is_final_context_starting_from_input(make_orch: Any) -> None:
    """A run's result is its final context: the input plus output mappings."""
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "ctx",
            "global_variables": {"unit": "kg"},
            "steps": [
                {
                    "step_id": "a",
                    "action": "record",
                    "input_mapping": {"name": "input.who", "value": "globals.unit"},
                    "output_mapping": {"greeting": "name", "whole": "@"},
                }
            ],
        }
    )
    run = await make_orch(_registry([])).execute_workflow(wf, {"who": "ada"})
    assert run.result == {"who": "ada", "greeting": "ada", "whole": {"name": "ada", "value": "kg"}}


async def test_results_namespace_reads_earlier_outputs(make_orch: Any) -> None:
    """`results.<step>` reads an earlier step's output in a later mapping."""
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "res",
            "steps": [
                _step("a"),
                {
                    "step_id": "b",
                    "action": "record",
                    "dependencies": ["a"],
                    "input_mapping": {"name": "'b'", "value": "results.a.name"},
                    "output_mapping": {"seen": "value"},
                },
            ],
        }
    )
    run = await make_orch(_registry([])).execute_workflow(wf, {})
    assert run.result is not None
    assert run.result["seen"] == "a"


def _diamond(priority_expr: str) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "diamond",
            "steps": [
                _step("start"),
                {
                    "step_id": "route",
                    "step_type": "conditional",
                    "dependencies": ["start"],
                    "conditions": [{"if": priority_expr, "then": ["fast"]}, {"else": ["slow"]}],
                },
                _step("fast"),
                _step("slow"),
                _step("slow_followup", ["slow"]),
                _step("join", ["fast", "slow_followup"]),
            ],
        }
    )


async def test_conditional_takes_first_matching_branch(make_orch: Any) -> None:
    """The first matching condition wins; the other branch is skipped."""
    log: list[str] = []
    run = await make_orch(_registry(log)).execute_workflow(
        _diamond("input.priority == 'high'"), {"priority": "high"}
    )
    assert run.status is WorkflowStatus.COMPLETED
    assert "fast" in log
    assert "slow" not in log
    assert set(run.skipped_steps) == {"slow", "slow_followup"}


async def test_skipped_propagates_through_diamond_to_join(make_orch: Any) -> None:
    """A skipped branch skips its followers, and the join still runs after the taken branch."""
    log: list[str] = []
    run = await make_orch(_registry(log)).execute_workflow(
        _diamond("input.priority == 'high'"), {"priority": "low"}
    )
    assert run.status is WorkflowStatus.COMPLETED
    assert log == ["start", "slow", "slow_followup", "join"]
    assert run.skipped_steps == ["fast"]
    assert run.step_results["fast"]["reason"] == "branch not taken by conditional 'route'"


async def test_missing_name_in_condition_is_false_not_error(make_orch: Any) -> None:
    """A condition reading a missing value compares as false, so `else` is taken."""
    log: list[str] = []
    run = await make_orch(_registry(log)).execute_workflow(_diamond("input.score > 10"), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert "slow" in log


async def test_step_whose_dependencies_all_skipped_is_skipped(make_orch: Any) -> None:
    """A step waiting only for skipped steps is skipped, with the reason recorded."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "skip",
            "steps": [
                {
                    "step_id": "route",
                    "step_type": "conditional",
                    "conditions": [{"if": "false", "then": ["a"]}],
                },
                _step("a"),
                _step("b", ["a"]),
            ],
        }
    )
    run = await make_orch(_registry(log)).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert log == []
    assert run.skipped_steps == ["a", "b"]
    assert "skipped" in run.step_results["b"]["reason"]


async def test_failed_step_fails_run_with_error_recorded(make_orch: Any) -> None:
    """An action that raises fails the run; the error and a traceback summary are kept."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "fail",
            "retry_policy": {"max_attempts": 1},
            "steps": [
                _step("a"),
                {"step_id": "b", "action": "fail", "dependencies": ["a"]},
                _step("c", ["b"]),
            ],
        }
    )
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(wf, {})
    assert run.status is WorkflowStatus.FAILED
    assert run.failed_steps == ["b"]
    assert run.error is not None
    assert run.error["step_id"] == "b"
    assert run.error["error_type"] == "RuntimeError"
    assert "x broke" in run.error["message"]
    assert "RuntimeError" in run.error["traceback"]
    assert "c" not in log
    assert (await orch.status(run.run_id)).status is WorkflowStatus.FAILED


async def test_continue_on_failure_skips_failed_step(make_orch: Any) -> None:
    """Under continue_on_failure a failing step is skipped and the run goes on."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "cof",
            "retry_policy": {"max_attempts": 1},
            "steps": [
                {"step_id": "a", "action": "fail", "continue_on_failure": True},
                _step("b"),
                _step("c", ["a", "b"]),
            ],
        }
    )
    run = await make_orch(_registry(log)).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.skipped_steps == ["a"]
    assert run.step_results["a"]["error_type"] == "RuntimeError"
    assert "c" in log


async def test_independent_steps_run_in_one_superstep(make_orch: Any) -> None:
    """Ready steps of different types are dispatched together, each as its own task."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "fan",
            "steps": [
                _step("a"),
                _step("b"),
                {"step_id": "r", "step_type": "conditional", "conditions": [{"else": ["c"]}]},
                _step("c"),
            ],
        }
    )
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    history = [
        s async for s in orch.graph.aget_state_history({"configurable": {"thread_id": run.run_id}})
    ]
    batches = [set(s.values.get("current_steps", [])) for s in history]
    assert {"a", "b", "r"} in batches


async def test_graph_input_shape_runs_without_facade(make_orch: Any) -> None:
    """The compiled graph runs from `{"workflow": ..., "context": ...}` as Studio sends it."""
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "raw",
            "actions": "examples.support_triage.actions",
            "steps": [
                {
                    "step_id": "k",
                    "action": "classify_ticket",
                    "input_mapping": {"subject": "input.s", "body": "input.s"},
                }
            ],
        }
    )
    orch = make_orch(ActionRegistry())
    async with orch:
        out = await orch.graph.ainvoke(
            {"workflow": wf.to_data(), "context": {"s": "outage"}},
            {"configurable": {"thread_id": "studio-1"}},
        )
    assert out["status"] == "completed"
    assert out["intermediate_results"]["k"]["priority"] == "urgent"


async def test_invalid_definition_in_graph_input_fails_run_naming_problems(make_orch: Any) -> None:
    """A bad definition sent straight to the graph fails the run with every problem named."""
    orch = make_orch(ActionRegistry())
    async with orch:
        out = await orch.graph.ainvoke(
            {
                "workflow": {
                    "name": "bad",
                    "steps": [{"step_id": "a", "action": "x", "dependencies": ["zz"]}],
                },
                "context": {},
            },
            {"configurable": {"thread_id": "bad-1"}},
        )
    assert out["status"] == "failed"
    assert "unknown step 'zz'" in out["error"]["message"]


async def test_top_level_fan_out_respects_max_parallel_steps(make_orch: Any) -> None:
    """Independent top-level steps never run more than max_parallel_steps at once."""
    import asyncio

    running = {"now": 0, "peak": 0}
    registry = ActionRegistry()

    @registry.action("busy")
    async def busy() -> None:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0.02)
        running["now"] -= 1

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "fan",
            "max_parallel_steps": 3,
            "steps": [{"step_id": f"s{i}", "action": "busy"} for i in range(9)],
        }
    )
    run = await make_orch(registry).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert running["peak"] == 3
