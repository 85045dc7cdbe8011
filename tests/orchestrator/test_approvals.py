"""Human approval through the public contract: requests, decisions, deadlines, sweep."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FakeClock

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, InvalidInputError, RunStateError, WorkflowStatus


def _registry(log: list[str]) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("prepare")
    async def prepare(amount: int) -> dict[str, int]:
        log.append("prepare")
        return {"amount": amount}

    @registry.action("pay")
    async def pay(amount: int) -> dict[str, str]:
        log.append("pay")
        return {"payment_id": f"P-{amount}"}

    @registry.action("refund")
    async def refund(payment_id: str) -> None:
        log.append(f"refund {payment_id}")

    @registry.action("notify_rejected")
    async def notify_rejected() -> None:
        log.append("notify_rejected")

    return registry


def _workflow(approval: dict[str, Any], *, pay_first: bool = False) -> AdvancedWorkflow:
    steps: list[dict[str, Any]] = [
        {
            "step_id": "prepare",
            "action": "prepare",
            "input_mapping": {"amount": "input.amount"},
            "output_mapping": {"amount": "amount"},
        },
        {
            "step_id": "approve",
            "step_type": "human_approval",
            "dependencies": ["pay_deposit" if pay_first else "prepare"],
            "input_mapping": {"amount": "context.amount"},
            "approval": approval,
        },
        {
            "step_id": "pay",
            "action": "pay",
            "dependencies": ["approve"],
            "input_mapping": {"amount": "context.amount"},
            "rollback_actions": ["refund"],
        },
    ]
    if pay_first:
        steps.append(
            {
                "step_id": "pay_deposit",
                "action": "pay",
                "dependencies": ["prepare"],
                "input_mapping": {"amount": "`10`"},
                "rollback_actions": ["refund"],
            }
        )
    if approval.get("on_reject"):
        steps.append({"step_id": "notify_rejected", "action": "notify_rejected"})
    return AdvancedWorkflow.from_dict(
        {"name": "claim", "retry_policy": {"max_attempts": 1}, "steps": steps}
    )


async def test_approval_pauses_run_with_request(make_orch: Any) -> None:
    """A human_approval step leaves the run waiting, showing the request and its summary."""
    orch = make_orch(_registry([]))
    run = await orch.execute_workflow(_workflow({"approvers": ["alice", "bob"]}), {"amount": 5})
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    request = run.pending_approval
    assert request is not None
    assert request["step_id"] == "approve"
    assert request["approvers"] == ["alice", "bob"]
    assert request["summary"] == {"amount": 5}
    assert run.to_json()["pending_approval"]["request_id"] == request["request_id"]


async def test_allowed_approver_continues_the_run(make_orch: Any) -> None:
    """An allowed approver's approval completes the step and the run goes on."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(_workflow({"approvers": ["alice"]}), {"amount": 5})
    run = await orch.approve(run.run_id, approver="alice", comment="fine")
    assert run.status is WorkflowStatus.COMPLETED
    assert log == ["prepare", "pay"]


async def test_not_allowed_approver_is_refused_and_run_keeps_waiting(make_orch: Any) -> None:
    """Someone not listed gets a clear error, and the run is unchanged."""
    orch = make_orch(_registry([]))
    run = await orch.execute_workflow(_workflow({"approvers": ["alice"]}), {"amount": 5})
    with pytest.raises(InvalidInputError, match=r"'mallory' may not decide.*alice"):
        await orch.approve(run.run_id, approver="mallory")
    again = await orch.status(run.run_id)
    assert again.status is WorkflowStatus.WAITING_APPROVAL
    assert again.pending_approval == run.pending_approval


async def test_two_of_three_needs_two_distinct_approvers(make_orch: Any) -> None:
    """min_approvals 2: the same person twice is refused; a second person completes it."""
    orch = make_orch(_registry([]))
    wf = _workflow({"approvers": ["dana", "lee", "kim"], "min_approvals": 2})
    run = await orch.execute_workflow(wf, {"amount": 5})
    run = await orch.approve(run.run_id, approver="dana")
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    assert run.pending_approval is not None
    assert [a["approver"] for a in run.pending_approval["approvals"]] == ["dana"]
    with pytest.raises(
        InvalidInputError, match=r"'dana' has already approved.*1 of 2 approvals.*: lee, kim"
    ):
        await orch.approve(run.run_id, approver="dana")
    assert (await orch.status(run.run_id)).status is WorkflowStatus.WAITING_APPROVAL
    run = await orch.approve(run.run_id, approver="kim")
    assert run.status is WorkflowStatus.COMPLETED


async def test_rejection_fails_step_and_compensates(make_orch: Any) -> None:
    """A rejection fails the step with the reason; completed steps are compensated."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    run = await orch.execute_workflow(
        _workflow({"approvers": ["alice"]}, pay_first=True), {"amount": 5}
    )
    run = await orch.reject(run.run_id, approver="alice", reason="too risky")
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "ApprovalRejectedError"
    assert "too risky" in run.error["message"]
    assert log == ["prepare", "pay", "refund P-10"]


async def test_rejection_routes_to_on_reject_step(make_orch: Any) -> None:
    """With on_reject the rejection runs that step instead, and the approved path is skipped."""
    log: list[str] = []
    orch = make_orch(_registry(log))
    wf = _workflow({"approvers": ["alice"], "on_reject": "notify_rejected"})
    run = await orch.execute_workflow(wf, {"amount": 5})
    assert "notify_rejected" not in log
    run = await orch.reject(run.run_id, approver="alice", reason="no")
    assert run.status is WorkflowStatus.COMPLETED
    assert log == ["prepare", "notify_rejected"]
    assert "pay" in run.skipped_steps


def _deadline_workflow(on_timeout: str, **extra: Any) -> AdvancedWorkflow:
    return _workflow(
        {"approvers": ["alice"], "timeout_seconds": 3600, "on_timeout": on_timeout, **extra}
    )


async def test_sweep_ignores_waits_before_deadline(make_orch: Any) -> None:
    """Sweep decides nothing while the deadline has not passed."""
    clock = FakeClock()
    orch = make_orch(_registry([]), clock=clock)
    run = await orch.execute_workflow(_deadline_workflow("reject"), {"amount": 5})
    clock.advance(3599)
    assert await orch.sweep() == []
    assert (await orch.status(run.run_id)).status is WorkflowStatus.WAITING_APPROVAL


async def test_sweep_rejects_expired_wait(make_orch: Any) -> None:
    """on_timeout reject: an expired wait fails the step and flags approval_timeout."""
    clock = FakeClock()
    orch = make_orch(_registry([]), clock=clock)
    run = await orch.execute_workflow(_deadline_workflow("reject"), {"amount": 5})
    clock.advance(3601)
    swept = await orch.sweep()
    assert [r.run_id for r in swept] == [run.run_id]
    assert swept[0].status is WorkflowStatus.FAILED
    assert swept[0].error is not None
    assert swept[0].error["error_type"] == "ApprovalTimeoutError"
    assert "approval_timeout" in swept[0].compliance_flags
    assert await orch.sweep() == []


async def test_sweep_approves_expired_wait(make_orch: Any) -> None:
    """on_timeout approve: an expired wait approves the step and the run completes."""
    clock = FakeClock()
    log: list[str] = []
    orch = make_orch(_registry(log), clock=clock)
    run = await orch.execute_workflow(_deadline_workflow("approve"), {"amount": 5})
    clock.advance(3601)
    swept = await orch.sweep()
    assert swept[0].run_id == run.run_id
    assert swept[0].status is WorkflowStatus.COMPLETED
    assert "pay" in log


async def test_sweep_escalates_expired_wait(make_orch: Any) -> None:
    """on_timeout escalate: escalate_to approvers join with a new deadline."""
    clock = FakeClock()
    orch = make_orch(_registry([]), clock=clock)
    wf = _deadline_workflow("escalate", escalate_to=["cfo"])
    run = await orch.execute_workflow(wf, {"amount": 5})
    first_deadline = run.pending_approval["deadline"] if run.pending_approval else None
    clock.advance(3601)
    swept = await orch.sweep()
    assert swept[0].status is WorkflowStatus.WAITING_APPROVAL
    request = swept[0].pending_approval
    assert request is not None
    assert request["approvers"] == ["alice", "cfo"]
    assert request["deadline"] != first_deadline
    done = await orch.approve(run.run_id, approver="cfo")
    assert done.status is WorkflowStatus.COMPLETED


async def test_parallel_approvals_are_independent(make_orch: Any) -> None:
    """Approvals pending in parallel branches have their own request ids and approvers."""
    registry = _registry([])
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "two",
            "steps": [
                {
                    "step_id": "legal",
                    "step_type": "human_approval",
                    "approval": {"approvers": ["lee"]},
                },
                {
                    "step_id": "finance",
                    "step_type": "human_approval",
                    "approval": {"approvers": ["fay", "lee"]},
                },
            ],
        }
    )
    orch = make_orch(registry)
    run = await orch.execute_workflow(wf, {})
    assert {r["step_id"] for r in run.pending_approvals} == {"legal", "finance"}
    run = await orch.approve(run.run_id, approver="fay")
    assert [r["step_id"] for r in run.pending_approvals] == ["legal"]
    with pytest.raises(InvalidInputError, match="fay"):
        await orch.approve(run.run_id, approver="fay")
    run = await orch.approve(run.run_id, approver="lee")
    assert run.status is WorkflowStatus.COMPLETED


async def test_ambiguous_approver_must_name_request(make_orch: Any) -> None:
    """An approver allowed on several pending requests names one by request id."""
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "two",
            "steps": [
                {"step_id": "a", "step_type": "human_approval", "approval": {"approvers": ["lee"]}},
                {"step_id": "b", "step_type": "human_approval", "approval": {"approvers": ["lee"]}},
            ],
        }
    )
    orch = make_orch(_registry([]))
    run = await orch.execute_workflow(wf, {})
    with pytest.raises(InvalidInputError, match="request_id"):
        await orch.approve(run.run_id, approver="lee")
    target = next(r for r in run.pending_approvals if r["step_id"] == "b")
    run = await orch.approve(run.run_id, approver="lee", request_id=target["request_id"])
    assert [r["step_id"] for r in run.pending_approvals] == ["a"]


async def test_approving_a_finished_run_is_an_error(make_orch: Any) -> None:
    """Deciding on a run that waits for nothing is a clear error."""
    orch = make_orch(_registry([]))
    run = await orch.execute_workflow(_workflow({"approvers": ["alice"]}), {"amount": 1})
    await orch.approve(run.run_id, approver="alice")
    with pytest.raises(RunStateError, match="not waiting"):
        await orch.approve(run.run_id, approver="alice")
