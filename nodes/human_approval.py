"""The `human_approval` node: pause with `interrupt()` until enough allowed people decide.

The interrupt carries an `ApprovalRequest` (plain data). Each resume value is one decision
`{decision: approve|reject, approver, comment}`; a decision by someone not allowed, a second
one by the same person, or a value of another shape is refused (the facade refuses them
before resuming; a graph resumed directly, as from Studio, keeps waiting with the reason under
`refused` in its interrupt), and a rejection fails the step with the reason.
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


class ApprovalTimeoutError(StepFailedError):
    """Nobody decided before the deadline and the policy says reject."""


def approval_request(step: WorkflowStep, task: StepTask) -> dict[str, Any]:
    """The `ApprovalRequest` data a waiting run shows under `pending_approval`."""
    config = step.approval
    assert config is not None  # validated: human_approval steps have `approval`
    requested = task.get("dispatched_at") or 0.0
    deadline = requested + config.timeout_seconds if config.timeout_seconds else None
    return {
        "request_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{task['run_id']}/{step.step_id}")),
        "step_id": step.step_id,
        "run_id": task["run_id"],
        "summary": config.summary or task.get("inputs") or {},
        "approvers": list(config.approvers),
        "min_approvals": config.min_approvals,
        "requested_at": utc_iso(requested),
        "deadline": utc_iso(deadline) if deadline is not None else None,
        "deadline_epoch": deadline,
        "on_timeout": config.on_timeout.value,
        "escalated": False,
        "approvals": [],
    }


def _outcome(
    step: WorkflowStep, runtime: Runtime[Any], status: StepStatus, **fields: Any
) -> StepOutcome:
    now = clock_of(runtime)()
    return StepOutcome(step.step_id, status, started=now, finished=now, attempts=1, **fields)


def _escalate(request: dict[str, Any], step: WorkflowStep, decided: float) -> dict[str, Any]:
    config = step.approval
    assert config is not None
    assert config.timeout_seconds is not None
    approvers = list(dict.fromkeys([*request["approvers"], *config.escalate_to]))
    deadline = decided + config.timeout_seconds
    return {
        **request,
        "approvers": approvers,
        "escalated": True,
        "deadline": utc_iso(deadline),
        "deadline_epoch": deadline,
    }


RESUME_PAYLOAD = '{"decision": "approve" | "reject", "approver": "<name>", "comment": "..."}'
"""What resuming a waiting approval takes (LangGraph `Command(resume=...)`, Studio's Resume)."""


def _refusal(
    decision: Any, request: dict[str, Any], approvals: dict[str, dict[str, Any]]
) -> str | None:
    """Why a resume value cannot count (None: it counts). The facade refuses these before
    resuming; a graph resumed directly (Studio, the SDK) gets the reason in the interrupt."""
    if not isinstance(decision, dict) or decision.get("decision") not in DECISIONS:
        return f"resume with {RESUME_PAYLOAD}; got {decision!r}"
    if decision["decision"] == "timeout":
        return None
    who = str(decision.get("approver", ""))
    if who not in request["approvers"]:
        return f"'{who}' may not decide this approval; allowed approvers: " + ", ".join(
            request["approvers"]
        )
    if who in approvals:
        return f"'{who}' has already approved; another approver is needed"
    return None


DECISIONS = ("approve", "reject", "timeout")


async def human_approval(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Wait for approvals; complete when `min_approvals` distinct allowed people approve.

    A `timeout` decision (from `sweep`) applies `on_timeout`: reject fails the step, approve
    completes it, escalate adds `escalate_to` approvers with a new deadline (once; a second
    expiry rejects).
    """
    step = step_from_data(task["step"])
    request = approval_request(step, task)
    approvals: dict[str, dict[str, Any]] = {}
    flags: list[str] = []
    refused: str | None = None
    while len(approvals) < request["min_approvals"]:
        asked = {**request, "approvals": list(approvals.values())}
        decision = interrupt({**asked, "refused": refused} if refused else asked)
        refused = _refusal(decision, request, approvals)
        if refused:
            continue  # the run keeps waiting; its interrupt now says why
        who = str(decision.get("approver", ""))
        kind = decision.get("decision")
        if kind == "timeout":
            flags = ["approval_timeout"]
            policy = request["on_timeout"]
            if policy == "escalate" and not request["escalated"]:
                request = _escalate(request, step, float(decision.get("decided_epoch") or 0.0))
                continue
            if policy == "approve":
                approvals[who] = {
                    "approver": who,
                    "comment": "approved on timeout",
                    "decided_at": decision.get("decided_at"),
                }
                break
            error = ApprovalTimeoutError(
                f"nobody decided step '{step.step_id}' before its deadline "
                f"{request['deadline']}; on_timeout rejects it"
            )
            return finish(
                task, runtime, _outcome(step, runtime, StepStatus.FAILED, error=error, flags=flags)
            )
        if kind == "reject":
            rejected = ApprovalRejectedError(
                f"step '{step.step_id}' was rejected by {who}: "
                f"{decision.get('comment') or 'no reason given'}"
            )
            return finish(task, runtime, _outcome(step, runtime, StepStatus.FAILED, error=rejected))
        approvals[who] = {
            "approver": who,
            "comment": decision.get("comment"),
            "decided_at": decision.get("decided_at"),
        }
    output = {
        "approved": True,
        "approvals": list(approvals.values()),
        "request_id": request["request_id"],
    }
    outcome = _outcome(
        step,
        runtime,
        StepStatus.COMPLETED,
        output=output,
        flags=flags,
        context_updates=map_outputs(step.output_mapping, output),
    )
    return finish(task, runtime, outcome)
