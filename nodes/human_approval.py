"""The `human_approval` node: pause with `interrupt()` until enough allowed people decide.

The interrupt carries an `ApprovalRequest` (plain data). Each resume value is one decision
`{decision: approve|reject, approver, comment}`; decisions by people not allowed are ignored
(the facade refuses them before resuming), one person counts once, and a rejection fails the
step with the reason.
"""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from nodes._definition import step_from_data
from nodes._outcome import StepOutcome, utc_iso
from nodes._report import finish
from nodes._services import clock_of
from nodes._task import StepTask
from policies import map_outputs
from state import StepFailedError, StepStatus, WorkflowStep


class ApprovalRejectedError(StepFailedError):
    """An approver rejected the step."""


def approval_request(step: WorkflowStep, task: StepTask) -> dict[str, Any]:
    """The `ApprovalRequest` data a waiting run shows under `pending_approval`."""
    config = step.approval
    assert config is not None  # validated: human_approval steps have `approval`
    requested = task.get("dispatched_at") or 0.0
    return {
        "request_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task['run_id']}/{step.step_id}")),
        "step_id": step.step_id,
        "run_id": task["run_id"],
        "summary": config.summary or task.get("inputs") or {},
        "approvers": list(config.approvers),
        "min_approvals": config.min_approvals,
        "requested_at": utc_iso(requested),
        "deadline": utc_iso(requested + config.timeout_seconds) if config.timeout_seconds else None,
        "on_timeout": config.on_timeout.value,
        "approvals": [],
    }


async def human_approval(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Wait for approvals; complete when `min_approvals` distinct allowed people approve."""
    step = step_from_data(task["step"])
    request = approval_request(step, task)
    allowed = set(request["approvers"])
    approvals: dict[str, dict[str, Any]] = {}
    while len(approvals) < request["min_approvals"]:
        decision = interrupt({**request, "approvals": list(approvals.values())})
        who = str(decision.get("approver", ""))
        if who not in allowed:
            continue
        if decision.get("decision") == "reject":
            now = clock_of(runtime)()
            error = ApprovalRejectedError(
                f"step '{step.step_id}' was rejected by {who}: "
                f"{decision.get('comment') or 'no reason given'}"
            )
            return finish(
                task,
                runtime,
                StepOutcome(
                    step.step_id,
                    StepStatus.FAILED,
                    error=error,
                    started=now,
                    finished=now,
                    attempts=1,
                ),
            )
        approvals[who] = {
            "approver": who,
            "comment": decision.get("comment"),
            "decided_at": decision.get("decided_at"),
        }
    now = clock_of(runtime)()
    output = {
        "approved": True,
        "approvals": list(approvals.values()),
        "request_id": request["request_id"],
    }
    outcome = StepOutcome(
        step.step_id,
        StepStatus.COMPLETED,
        output=output,
        started=now,
        finished=now,
        attempts=1,
        context_updates=map_outputs(step.output_mapping, output),
    )
    return finish(task, runtime, outcome)
