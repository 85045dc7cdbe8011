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


def _late(request: dict[str, Any], decision: dict[str, Any], now: float) -> bool:
    """Whether `decision` was made at or after the request's deadline.

    The decision's own `decided_epoch` (stamped by whoever delivered it) is the time it was
    made, so a decision replayed when a later one arrives keeps its time; one without a stamp
    (e.g. sent straight to the graph) is judged at `now`, the injected clock.
    """
    deadline = request.get("deadline_epoch")
    if deadline is None:
        return False
    stamped = decision.get("decided_epoch")
    made = float(stamped) if isinstance(stamped, int | float) else now
    return made >= float(deadline)


async def human_approval(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Wait for approvals; complete when `min_approvals` distinct allowed people approve.

    A `timeout` decision (from `sweep`) applies `on_timeout`: reject fails the step, approve
    completes it, escalate adds `escalate_to` approvers with a new deadline (once; a second
    expiry rejects). A decision made after the deadline is treated the same way: it never
    counts against an expired request, whichever process delivers it.
    """
    step = step_from_data(task["step"])
    request = approval_request(step, task)
    approvals: dict[str, dict[str, Any]] = {}
    flags: list[str] = []
    clock = clock_of(runtime)
    again: dict[str, Any] | None = None
    refused: str | None = None
    while len(approvals) < request["min_approvals"]:
        asked = {**request, "approvals": list(approvals.values())}
        decision = again or interrupt({**asked, "refused": refused} if refused else asked)
        again = None
        refused = _refusal(decision, request, approvals)
        if refused:
            continue  # the run keeps waiting; its interrupt now says why
        who = str(decision.get("approver", ""))
        kind = decision.get("decision")
        if kind != "timeout" and _late(request, decision, clock()):
            # the deadline passed before this decision: its policy decides, never the decision
            flags = ["approval_timeout"]
            if request["on_timeout"] == "escalate" and not request["escalated"]:
                # the escalated wait starts when the first one expired; the decision is then
                # judged against the new deadline (and counts if its maker may decide)
                request = _escalate(request, step, float(request["deadline_epoch"]))
                again = decision
                continue
            decision = {**decision, "decision": "timeout", "approver": "system:deadline"}
            who, kind = "system:deadline", "timeout"
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
            outcome = _outcome(step, runtime, StepStatus.FAILED, error=error, flags=flags)
            return _closed(request, "timed_out", approvals, finish(task, runtime, outcome))
        if who not in request["approvers"]:
            continue
        if kind == "reject":
            rejected = ApprovalRejectedError(
                f"step '{step.step_id}' was rejected by {who}: "
                f"{decision.get('comment') or 'no reason given'}"
            )
            outcome = _outcome(step, runtime, StepStatus.FAILED, error=rejected)
            return _closed(request, "rejected", approvals, finish(task, runtime, outcome))
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
    return _closed(request, "approved", approvals, finish(task, runtime, outcome))


def _closed(
    request: dict[str, Any],
    status: str,
    approvals: dict[str, dict[str, Any]],
    update: dict[str, Any],
) -> dict[str, Any]:
    """`update` with the request recorded as decided in `approval_requests`."""
    closed = {**request, "status": status, "approvals": list(approvals.values())}
    return {**update, "approval_requests": {request["request_id"]: closed}}
