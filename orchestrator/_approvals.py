"""Choosing which pending approval a decision applies to, and which ones have expired."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from langgraph.types import Interrupt

from state import InvalidInputError


def choose_request(
    interrupts: Sequence[Interrupt], run_id: str, approver: str, request_id: str | None
) -> Interrupt:
    """The pending request `approver` may decide (by `request_id` when several fit).

    Raises `InvalidInputError` naming the allowed approvers, or the request ids to choose from.
    """
    candidates = [
        i
        for i in interrupts
        if isinstance(i.value, dict)
        and (request_id is None or i.value.get("request_id") == request_id)
    ]
    allowed = [i for i in candidates if approver in i.value.get("approvers", [])]
    undecided = [i for i in allowed if approver not in _approved_by(i.value)]
    if allowed and not undecided:
        request = allowed[0].value
        left = [a for a in request["approvers"] if a not in _approved_by(request)]
        raise InvalidInputError(
            f"'{approver}' has already approved '{request['step_id']}' of run '{run_id}'; "
            f"{len(_approved_by(request))} of {request['min_approvals']} approvals, waiting for "
            f"one of: {', '.join(left)}. The run keeps waiting."
        )
    allowed = undecided
    if not allowed:
        who = sorted({a for i in candidates for a in i.value.get("approvers", [])})
        raise InvalidInputError(
            f"'{approver}' may not decide the pending approval of run '{run_id}'; allowed "
            f"approvers: {', '.join(who) or 'none'}. The run keeps waiting."
        )
    if len(allowed) > 1 and request_id is None:
        ids = ", ".join(f"{i.value['request_id']} ({i.value['step_id']})" for i in allowed)
        raise InvalidInputError(
            f"'{approver}' may decide several pending approvals; name one with request_id: {ids}"
        )
    return allowed[0]


def _approved_by(request: dict[str, Any]) -> list[str]:
    return [str(a.get("approver")) for a in request.get("approvals", [])]


def expired(interrupts: Sequence[Interrupt], now: float) -> list[tuple[Interrupt, float]]:
    """Pending requests whose deadline has passed, with that deadline."""
    found = []
    for pending in interrupts:
        value = pending.value if isinstance(pending.value, dict) else {}
        deadline = value.get("deadline_epoch")
        if deadline is not None and deadline <= now:
            found.append((pending, float(deadline)))
    return found


def decision(kind: str, approver: str, comment: str | None, now: float) -> dict[str, Any]:
    """The resume value a `human_approval` node receives."""
    return {
        "decision": kind,
        "approver": approver,
        "comment": comment,
        "decided_at": datetime.fromtimestamp(now, UTC).isoformat(),
        "decided_epoch": now,
    }
