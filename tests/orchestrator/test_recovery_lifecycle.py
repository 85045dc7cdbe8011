"""error_recovery, compensation, cancel, pause and rollback through the public contract."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import saga_step

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, RunStateError, WorkflowStatus


def _registry(log: list[str], *, fail: set[str] | None = None) -> ActionRegistry:
    registry = ActionRegistry()
    failing = fail or set()

    @registry.action("do")
    async def do(name: str) -> dict[str, str]:
        log.append(f"do {name}")
        if name in failing:
            raise RuntimeError(f"{name} failed")
        return {"ref": f"R-{name}"}

    @registry.action("undo")
    async def undo(ref: str, step_id: str) -> None:
        log.append(f"undo {step_id} {ref}")
        if f"undo {step_id}" in failing:
            raise RuntimeError(f"cannot undo {step_id}")

    @registry.action("handle")
    async def handle() -> dict[str, bool]:
        log.append("handle")
        return {"handled": True}

    return registry


_step = saga_step


def _chain(*extra_steps: dict[str, Any], **kw: Any) -> AdvancedWorkflow:
    steps = [_step("book"), _step("charge", ["book"]), _step("ship", ["charge"]), *extra_steps]
    return AdvancedWorkflow.from_dict(
        {"name": "saga", "retry_policy": {"max_attempts": 1}, "steps": steps, **kw}
    )


async def test_failure_compensates_completed_steps_newest_first(make_orch: Any) -> None:
    """A failure runs rollback_actions of completed steps, newest first, then ends failed."""
    log: list[str] = []
    run = await make_orch(_registry(log, fail={"ship"})).execute_workflow(_chain(), {})
    assert run.status is WorkflowStatus.FAILED
    assert log == ["do book", "do charge", "do ship", "undo charge R-charge", "undo book R-book"]
    assert run.error is not None
    assert run.error["step_id"] == "ship"


async def test_failed_compensation_is_flagged_and_others_still_run(make_orch: Any) -> None:
    """A compensation that fails is recorded with a flag; the remaining ones still run."""
    log: list[str] = []
    orch = make_orch(_registry(log, fail={"ship", "undo charge"}))
    run = await orch.execute_workflow(_chain(), {})
    assert run.status is WorkflowStatus.FAILED
    assert "compensation_failed" in run.compliance_flags
    assert log[-2:] == ["undo charge R-charge", "undo book R-book"]
    graph_state = await orch.graph.aget_state({"configurable": {"thread_id": run.run_id}})
    record = graph_state.values["compensations"]["charge:undo"]
    assert record["status"] == "failed"
    assert "cannot undo charge" in record["error"]


async def test_error_handler_runs_instead_of_compensation(make_orch: Any) -> None:
    """A failing step's error_handlers run and the run completes without compensating."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "h",
            "retry_policy": {"max_attempts": 1},
            "steps": [
                _step("book"),
                _step("charge", ["book"], error_handlers=["fallback"]),
                _step("ship", ["charge"]),
                {"step_id": "fallback", "action": "handle"},
            ],
        }
    )
    run = await make_orch(_registry(log, fail={"charge"})).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert log == ["do book", "do charge", "handle"]
    assert run.failed_steps == ["charge"]
    assert "ship" in run.skipped_steps


async def test_handler_step_does_not_run_without_failure(make_orch: Any) -> None:
    """A step named only as an error handler is not scheduled on its own."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "h",
            "steps": [
                _step("book", error_handlers=["fallback"]),
                {"step_id": "fallback", "action": "handle"},
            ],
        }
    )
    run = await make_orch(_registry(log)).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert log == ["do book"]


def _approval_chain() -> AdvancedWorkflow:
    return _chain(
        {
            "step_id": "gate",
            "step_type": "human_approval",
            "dependencies": ["ship"],
            "approval": {"approvers": ["ann"]},
        },
        _step("close", ["gate"]),
    )


async def test_cancel_waiting_run_without_compensation(make_orch: Any) -> None:
    """Cancelling a waiting run ends it cancelled and runs no further step."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(_approval_chain(), {})
    run = await orch.cancel(run.run_id)
    assert run.status is WorkflowStatus.CANCELLED
    assert run.pending_approval is None
    assert log == ["do book", "do charge", "do ship"]


async def test_cancel_with_compensation_undoes_completed_steps(make_orch: Any) -> None:
    """cancel --compensate runs the compensations newest first, then ends cancelled."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(_approval_chain(), {})
    run = await orch.cancel(run.run_id, compensate=True)
    assert run.status is WorkflowStatus.CANCELLED
    assert log[3:] == ["undo ship R-ship", "undo charge R-charge", "undo book R-book"]


async def test_finished_runs_cannot_be_resumed_or_cancelled(make_orch: Any) -> None:
    """Resuming or cancelling a completed, failed or cancelled run is a clear error."""
    orch = make_orch(_registry([]))
    run = await orch.execute_workflow(_chain(), {})
    with pytest.raises(RunStateError, match="completed; a finished run cannot be resumed"):
        await orch.resume(run.run_id)
    with pytest.raises(RunStateError, match="already completed"):
        await orch.cancel(run.run_id)


async def test_pause_waiting_run_then_resume(make_orch: Any) -> None:
    """A paused waiting run refuses decisions until resumed, then waits again."""
    orch = make_orch(_registry([]))
    run = await orch.execute_workflow(_approval_chain(), {})
    paused = await orch.pause(run.run_id)
    assert paused.status is WorkflowStatus.PAUSED
    with pytest.raises(RunStateError, match="paused"):
        await orch.approve(run.run_id, approver="ann")
    resumed = await orch.resume(run.run_id)
    assert resumed.status is WorkflowStatus.WAITING_APPROVAL
    assert (await orch.approve(run.run_id, approver="ann")).status is WorkflowStatus.COMPLETED


def _point_chain() -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "rb",
            "retry_policy": {"max_attempts": 1},
            "steps": [
                _step("book"),
                _step("charge", ["book"], rollback_point=True),
                _step("ship", ["charge"]),
                {
                    "step_id": "gate",
                    "step_type": "human_approval",
                    "dependencies": ["ship"],
                    "approval": {"approvers": ["ann"]},
                },
                _step("close", ["gate"]),
            ],
        }
    )


async def test_rollback_compensates_and_restores_paused(make_orch: Any) -> None:
    """rollback --to compensates steps after the point and leaves the run paused before it."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(_point_chain(), {})
    run = await orch.rollback(run.run_id, to="charge")
    assert run.status is WorkflowStatus.PAUSED
    assert log[3:] == ["undo ship R-ship", "undo charge R-charge"]
    assert run.completed_steps == ["book"]


async def test_resume_after_rollback_re_executes_from_point(make_orch: Any) -> None:
    """Resuming a rolled-back run runs the point's step and its followers again."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(_point_chain(), {})
    await orch.rollback(run.run_id, to="charge")
    log.clear()
    run = await orch.resume(run.run_id)
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    assert log == ["do charge", "do ship"]
    assert (await orch.approve(run.run_id, approver="ann")).status is WorkflowStatus.COMPLETED


async def test_rollback_to_unknown_point_names_known_points(make_orch: Any) -> None:
    """Rolling back to a point the run does not have lists the ones it has."""
    orch = make_orch(_registry([]))
    run = await orch.execute_workflow(_point_chain(), {})
    with pytest.raises(RunStateError, match="rollback points are: charge"):
        await orch.rollback(run.run_id, to="ship")


async def test_rollback_step_in_workflow_rolls_back_to_point(make_orch: Any) -> None:
    """A rollback step used as an error handler compensates and restores the run, paused."""
    log: list[str] = []
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "rbs",
            "retry_policy": {"max_attempts": 1},
            "steps": [
                _step("book"),
                _step("charge", ["book"], rollback_point=True),
                _step("ship", ["charge"], error_handlers=["undo_to_charge"]),
                {"step_id": "undo_to_charge", "step_type": "rollback", "rollback_to": "charge"},
            ],
        }
    )
    orch = make_orch(_registry(log, fail={"ship"}))
    run = await orch.execute_workflow(wf, {})
    assert run.status is WorkflowStatus.PAUSED
    assert log == ["do book", "do charge", "do ship", "undo charge R-charge"]
    assert run.completed_steps == ["book"]
