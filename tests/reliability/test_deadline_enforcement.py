"""Deadlines hold at decision time, and timeouts stop the work they cut off."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, WorkflowDefinitionError, WorkflowStatus


def _approval_registry(log: list[str]) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("pay")
    async def pay() -> dict[str, str]:
        log.append("pay")
        return {"paid": "yes"}

    return registry


def _approval_workflow(on_timeout: str, **extra: Any) -> AdvancedWorkflow:
    approval = {"approvers": ["alice"], "timeout_seconds": 2, "on_timeout": on_timeout, **extra}
    return AdvancedWorkflow.from_dict(
        {
            "name": "late",
            "steps": [
                {"step_id": "ok", "step_type": "human_approval", "approval": approval},
                {"step_id": "pay", "action": "pay", "dependencies": ["ok"]},
            ],
        }
    )


async def test_late_approval_applies_reject_policy(make_orch: Any) -> None:
    """An approval arriving after the deadline is not counted: on_timeout reject fails the run."""
    clock, log = FakeClock(), []
    orch = make_orch(_approval_registry(log), clock=clock)
    run = await orch.execute_workflow(_approval_workflow("reject"))
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    clock.advance(3)
    late = await orch.approve(run.run_id, approver="alice")
    assert late.status is WorkflowStatus.FAILED
    assert late.error is not None
    assert late.error["error_type"] == "ApprovalTimeoutError"
    assert "approval_timeout" in late.compliance_flags
    assert log == []
    events = [e["event"] for e in await orch.audit_trail(run.run_id)]
    assert "approval_timed_out" in events


async def test_approval_in_time_still_counts(make_orch: Any) -> None:
    """A decision made before the deadline completes the step as usual."""
    clock, log = FakeClock(), []
    orch = make_orch(_approval_registry(log), clock=clock)
    run = await orch.execute_workflow(_approval_workflow("reject"))
    clock.advance(1)
    done = await orch.approve(run.run_id, approver="alice")
    assert done.status is WorkflowStatus.COMPLETED
    assert log == ["pay"]


async def test_late_rejection_applies_approve_policy(make_orch: Any) -> None:
    """With on_timeout approve, a late rejection does not win: the deadline's policy approves."""
    clock, log = FakeClock(), []
    orch = make_orch(_approval_registry(log), clock=clock)
    run = await orch.execute_workflow(_approval_workflow("approve"))
    clock.advance(5)
    done = await orch.reject(run.run_id, approver="alice", reason="too late")
    assert done.status is WorkflowStatus.COMPLETED
    assert log == ["pay"]


async def test_late_decision_escalates_then_counts_in_new_window(make_orch: Any) -> None:
    """on_timeout escalate: a late decision escalates and counts inside the new window."""
    clock, log = FakeClock(), []
    orch = make_orch(_approval_registry(log), clock=clock)
    run = await orch.execute_workflow(_approval_workflow("escalate", escalate_to=["cfo"]))
    clock.advance(3)  # past the first deadline, inside the escalated one (2 s after expiry)
    done = await orch.approve(run.run_id, approver="alice")
    assert done.status is WorkflowStatus.COMPLETED
    assert "approval_timeout" in done.compliance_flags


async def test_late_decision_after_escalated_window_rejects(make_orch: Any) -> None:
    """A decision after the escalated deadline too ends in rejection."""
    clock = FakeClock()
    orch = make_orch(_approval_registry([]), clock=clock)
    run = await orch.execute_workflow(_approval_workflow("escalate", escalate_to=["cfo"]))
    clock.advance(10)
    done = await orch.approve(run.run_id, approver="alice")
    assert done.status is WorkflowStatus.FAILED
    assert done.error is not None
    assert done.error["error_type"] == "ApprovalTimeoutError"


def _timing_registry(calls: list[str], marker: Path | None = None) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("slow_async")
    async def slow_async() -> None:
        calls.append("start")
        await asyncio.sleep(30)
        calls.append("end")

    @registry.action("slow_sync")
    def slow_sync(seconds: float) -> str:
        calls.append(f"start {threading.get_ident()}")
        time.sleep(seconds)
        calls.append("end")
        if marker is not None:
            marker.write_text("finished")
        return "done"

    @registry.action("undo")
    async def undo() -> None:
        calls.append("undo")

    @registry.action("first")
    async def first() -> None:
        calls.append("first")

    return registry


async def test_workflow_timeout_cancels_step_and_skips_retries(make_orch: Any) -> None:
    """The workflow timeout cuts the step in flight, makes no retry and ends timed_out."""
    calls: list[str] = []
    orch = make_orch(_timing_registry(calls), sleep=asyncio.sleep)
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "deadline",
            "timeout": 1,
            "retry_policy": {"max_attempts": 5, "initial_delay": 5},
            "steps": [
                {"step_id": "first", "action": "first", "rollback_actions": ["undo"]},
                {"step_id": "slow", "action": "slow_async", "dependencies": ["first"]},
            ],
        }
    )
    started = time.monotonic()
    run = await orch.execute_workflow(workflow)
    elapsed = time.monotonic() - started
    assert run.status is WorkflowStatus.TIMED_OUT
    assert run.error is not None
    assert run.error["error_type"] == "WorkflowTimeoutError"
    assert calls == ["first", "start", "undo"]  # one attempt, cut off, then compensated
    assert elapsed < 10


async def test_timed_out_sync_thread_never_overlaps_its_retry(make_orch: Any) -> None:
    """A sync action in a thread is waited for after its timeout: attempts run one at a time."""
    calls: list[str] = []
    orch = make_orch(_timing_registry(calls), sleep=asyncio.sleep)
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "overrun",
            "retry_policy": {"max_attempts": 2, "initial_delay": 0},
            "steps": [
                {
                    "step_id": "s",
                    "action": "slow_sync",
                    "timeout": 0.2,
                    "input_mapping": {"seconds": "`1.0`"},
                }
            ],
        }
    )
    run = await orch.execute_workflow(workflow)
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "past the limit" in run.error["message"]
    assert "isolation: process" in run.error["message"]
    # each attempt finished before the next started: start, end, start, end
    assert [c.split()[0] for c in calls] == ["start", "end", "start", "end"]


async def test_process_isolation_kills_timed_out_action(make_orch: Any, tmp_path: Path) -> None:
    """With isolation: process a timed-out sync action is killed: it never finishes."""
    marker = tmp_path / "finished.txt"
    orch = make_orch(_timing_registry([], marker), sleep=asyncio.sleep)
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "killed",
            "retry_policy": {"max_attempts": 2, "initial_delay": 0},
            "steps": [
                {
                    "step_id": "s",
                    "action": "slow_sync",
                    "timeout": 0.5,
                    "isolation": "process",
                    "input_mapping": {"seconds": "`3.0`"},
                }
            ],
        }
    )
    started = time.monotonic()
    run = await orch.execute_workflow(workflow)
    elapsed = time.monotonic() - started
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "StepTimeoutError"
    assert elapsed < 2.9  # both attempts were cut off, well before one could finish
    await asyncio.sleep(3.5)
    assert not marker.exists()


async def test_process_isolation_returns_result(make_orch: Any) -> None:
    """A sync action in its own process returns its value to the run."""
    orch = make_orch(_timing_registry([]), sleep=asyncio.sleep)
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "child",
            "steps": [
                {
                    "step_id": "s",
                    "action": "slow_sync",
                    "isolation": "process",
                    "timeout": 60,
                    "input_mapping": {"seconds": "`0.0`"},
                    "output_mapping": {"out": "@"},
                }
            ],
        }
    )
    run = await orch.execute_workflow(workflow)
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result == {"out": "done"}


def test_process_isolation_only_on_action_steps() -> None:
    """`isolation: process` on a step that calls no action is refused at load time."""
    with pytest.raises(WorkflowDefinitionError, match="isolation"):
        AdvancedWorkflow.from_dict(
            {
                "name": "bad",
                "steps": [
                    {
                        "step_id": "w",
                        "step_type": "webhook",
                        "isolation": "process",
                        "webhook": {"url": "http://x/"},
                    }
                ],
            }
        )
