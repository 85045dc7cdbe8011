"""What a run in flight shows: every step `pending` until it is dispatched, then `running`
(or `waiting_approval`), and the approval requests it has opened.

The orchestrator node writes these with its dispatch decision, so they are in the checkpoint
(visible to `status` from any process) before the steps run; each step's own result replaces
its entry when it finishes.
"""

from __future__ import annotations

from typing import Any, cast

from nodes._outcome import utc_iso
from nodes._scheduler import handler_only
from nodes._task import StepTask, namespace_of
from nodes.human_approval import approval_request
from policies import map_inputs
from state import AdvancedWorkflow, EnterpriseWorkflowState, MappingError, StepStatus, StepType


def pending_results(workflow: AdvancedWorkflow) -> dict[str, Any]:
    """`{step_id: {status: pending}}` for every step that runs unless a failure calls it."""
    handlers = handler_only(workflow)
    out: dict[str, Any] = {}
    for top in workflow.steps:
        if top.step_id in handlers:
            continue
        stack = [top]
        while stack:
            step = stack.pop()
            out[step.step_id] = {"step_id": step.step_id, "status": StepStatus.PENDING.value}
            stack.extend(step.children)
    return out


def live_results(workflow: AdvancedWorkflow, ready: list[str], now: float) -> dict[str, Any]:
    """`running` (`waiting_approval` for approvals) entries of the steps dispatched now."""
    out: dict[str, Any] = {}
    for sid in ready:
        waiting = workflow.step(sid).step_type is StepType.HUMAN_APPROVAL
        status = StepStatus.WAITING if waiting else StepStatus.RUNNING
        out[sid] = {"step_id": sid, "status": status.value, "started_at": utc_iso(now)}
    return out


def open_requests(
    state: EnterpriseWorkflowState,
    workflow: AdvancedWorkflow,
    approvals: list[str],
    run_id: str,
    now: float,
) -> dict[str, Any]:
    """`{request_id: ApprovalRequest data}` of the approval steps dispatched now, `open`."""
    namespace = namespace_of(state, workflow)
    out: dict[str, Any] = {}
    for sid in approvals:
        step = workflow.step(sid)
        try:
            inputs = map_inputs(step.input_mapping, namespace)
        except MappingError:
            inputs = {}  # the step itself fails with the mapping error
        task = cast(StepTask, {"run_id": run_id, "dispatched_at": now, "inputs": inputs})
        request = approval_request(step, task)
        out[request["request_id"]] = {**request, "status": "open"}
    return out
