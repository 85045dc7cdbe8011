"""The run state's shape through real runs: one packed write per step, finished runs read as
plain values, and runs stored in the layout before packing still resuming."""

from __future__ import annotations

import sqlite3
from typing import Any

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, WorkflowStatus


def _registry(log: list[str]) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("do")
    async def do(name: str) -> dict[str, str]:
        log.append(name)
        return {"ref": f"R-{name}"}

    return registry


def _step(name: str, after: str | None = None) -> dict[str, Any]:
    return {
        "step_id": name,
        "action": "do",
        "input_mapping": {"name": f"globals.names.{name}"},
        "dependencies": [after] if after else [],
    }


def _chain(names: list[str], *extra: dict[str, Any]) -> AdvancedWorkflow:
    steps = [_step(name, names[i - 1] if i else None) for i, name in enumerate(names)]
    return AdvancedWorkflow.from_dict(
        {
            "name": "shape",
            "retry_policy": {"max_attempts": 1},
            "global_variables": {"names": {n: n for n in [*names, "close"]}},
            "steps": [*steps, *extra],
        }
    )


def _write_rows(db_url: str) -> dict[str, int]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT channel, count(*) FROM writes GROUP BY channel").fetchall()
    return {str(channel): int(count) for channel, count in rows}


async def test_a_sequential_step_writes_two_checkpoint_rows(make_orch: Any, db_url: str) -> None:
    """Each step of a chain writes its fields as one packed row (plus LangGraph's edge row)."""
    names = [f"s{i:02d}" for i in range(30)]
    log: list[str] = []
    run = await make_orch(_registry(log)).execute_workflow(_chain(names), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.completed_steps == names
    rows = _write_rows(db_url)
    assert rows["progress"] == len(names) + 1  # one per step, and the first dispatch
    per_step = {channel: n for channel, n in rows.items() if n >= len(names)}
    assert set(per_step) == {"progress", "branch:to:orchestrator"}
    assert sum(rows.values()) <= 2 * len(names) + 25  # the start and the end write once


async def test_finished_run_reads_its_fields_from_plain_values(make_orch: Any) -> None:
    """A finished run's checkpoint holds the public fields themselves, `progress` emptied."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(_chain(["a", "b"]), {})
    snapshot = await orch.graph.aget_state({"configurable": {"thread_id": run.run_id}})
    values = snapshot.values
    assert values["completed_steps"] == ["a", "b"]
    assert values["intermediate_results"] == {"a": {"ref": "R-a"}, "b": {"ref": "R-b"}}
    assert values["step_results"]["b"]["status"] == "completed"
    assert values["audit_head"]
    assert not values["progress"]


async def test_run_stored_in_the_old_layout_resumes(make_orch: Any) -> None:
    """A waiting run whose steps are in the pre-packing channels resumes without re-running
    them and ends with every field complete."""
    gate = {
        "step_id": "gate",
        "step_type": "human_approval",
        "dependencies": ["c"],
        "approval": {"approvers": ["ann"]},
    }
    workflow = _chain(["a", "b", "c"], gate, _step("close", "gate"))
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(workflow, {})
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    config = {"configurable": {"thread_id": run.run_id}}
    values = (await orch.graph.aget_state(config)).values
    assert values["progress"]["completed_steps"] == ["a", "b", "c"]
    # what the previous version stored: every field in its own channel, no `progress`
    old = dict(values["progress"])
    await orch.graph.aupdate_state(
        config, {**old, "progress": {"__overwrite__": {}}}, as_node="orchestrator"
    )
    stored = (await orch.graph.aget_state(config)).values
    assert (stored["completed_steps"], stored["progress"]) == (["a", "b", "c"], {})
    run = await orch.resume(run.run_id)
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    run = await orch.approve(run.run_id, approver="ann")
    assert run.status is WorkflowStatus.COMPLETED
    assert log == ["a", "b", "c", "close"]
    assert run.completed_steps == ["a", "b", "c", "gate", "close"]
    assert set(run.step_results) == {"a", "b", "c", "gate", "close"}
