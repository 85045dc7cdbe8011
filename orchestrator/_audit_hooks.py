"""`AuditHooks`: the run hooks that write every auditable event to an `AuditLedger`."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from typing import Any

from nodes import RunHooks
from orchestrator._audit import AuditEvent, AuditLedger

_CURRENT_RUN: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "orchestrator_audit_run", default=None
)
"""(workflow_id, run_id) of the node being run, for hooks that do not carry the run
(circuit changes: breakers are shared by every run of an orchestrator)."""


class AuditHooks(RunHooks):
    """Records every auditable event of a run in an `AuditLedger`.

    Node-level hooks are at-least-once: a replayed node records its events again, as a
    second, truthful entry (a step that ran twice after a crash did run twice). Approval
    requests, which the facade reports after every drive while they wait, are recorded once
    per request and deadline.
    """

    def __init__(self, ledger: AuditLedger) -> None:
        self.ledger = ledger
        """Where entries go."""

    def _add(
        self,
        run_id: str,
        event: AuditEvent,
        workflow_id: str | None,
        *,
        actor: str = "system",
        step_id: str | None = None,
        dedupe_key: str | None = None,
        **data: Any,
    ) -> None:
        if workflow_id is not None:
            _CURRENT_RUN.set((workflow_id, run_id))
        details = {k: v for k, v in data.items() if v is not None}
        self.ledger.append(
            run_id,
            event=event,
            actor=actor,
            step_id=step_id,
            data=details,
            dedupe_key=dedupe_key,
            defer=event in _DEFERRED,
        )

    def on_run_started(self, *, workflow_id: str, run_id: str, **kw: Any) -> None:
        """`run_started`; with `optimization_enabled`, the `version` the run uses and the
        `optimized_from` record of an optimized definition."""
        self._add(
            run_id,
            AuditEvent.RUN_STARTED,
            workflow_id,
            version=kw.get("version"),
            optimized_from=kw.get("optimized_from"),
        )

    def on_run_finished(
        self, *, workflow_id: str, run_id: str, status: str, duration: float, **_: Any
    ) -> None:
        """`run_finished` with the final status and duration."""
        seconds = round(duration, 6)
        self._add(
            run_id, AuditEvent.RUN_FINISHED, workflow_id, status=status, duration_seconds=seconds
        )

    def on_step_started(
        self, *, workflow_id: str, run_id: str, step_id: str, step_type: str, **_: Any
    ) -> None:
        """`step_started`."""
        self._add(
            run_id, AuditEvent.STEP_STARTED, workflow_id, step_id=step_id, step_type=step_type
        )

    def on_step_retry(
        self, *, workflow_id: str, run_id: str, step_id: str, delay: float, **kw: Any
    ) -> None:
        """`step_retried`: the failed attempt, its error, and the delay before the next."""
        self._add(
            run_id,
            AuditEvent.STEP_RETRIED,
            workflow_id,
            step_id=step_id,
            attempt=kw.get("attempt"),
            error=kw.get("error"),
            delay_seconds=round(delay, 6),
        )

    def on_step(
        self, *, workflow_id: str, run_id: str, step_id: str, status: str, **kw: Any
    ) -> None:
        """`step_completed`, `step_failed` or `step_skipped`, with attempts and duration."""
        try:
            event = AuditEvent(f"step_{status}")
        except ValueError:
            return  # not a finishing status; nothing an auditor needs
        self._add(
            run_id,
            event,
            workflow_id,
            step_id=step_id,
            step_type=kw.get("step_type"),
            attempts=kw.get("attempts"),
            duration_seconds=round(float(kw.get("duration", 0.0)), 6),
            error_type=kw.get("error_type"),
        )

    def on_cache_hit(
        self, *, workflow_id: str, run_id: str, step_id: str, key: str, **_: Any
    ) -> None:
        """`step_cache_hit`: the step's output came from the step cache (key included)."""
        self._add(run_id, AuditEvent.STEP_CACHE_HIT, workflow_id, step_id=step_id, key=key)

    def on_route(
        self, *, workflow_id: str, run_id: str, step_id: str, targets: list[str], **kw: Any
    ) -> None:
        """`route_decided`: the condition that matched (`else`, or null) and the targets."""
        condition = kw.get("matched")
        self._add(
            run_id,
            AuditEvent.ROUTE_DECIDED,
            workflow_id,
            step_id=step_id,
            condition=condition,
            targets=list(targets),
            decided_by=kw.get("decided_by"),
            choice=kw.get("choice"),
            reason=kw.get("reason"),
        )

    def on_agent_finished(self, *, workflow_id: str, run_id: str, step_id: str, **kw: Any) -> None:
        """`agent_finished`: an agent step's model, status, model and tool calls, tokens."""
        self._add(
            run_id,
            AuditEvent.AGENT_FINISHED,
            workflow_id,
            step_id=step_id,
            model=kw.get("model"),
            status=kw.get("status"),
            model_calls=kw.get("iterations"),
            tool_calls=kw.get("tool_calls"),
            usage=kw.get("usage"),
            limit_reached=kw.get("limit_reached"),
        )

    def on_plan(
        self, *, workflow_id: str, run_id: str, step_id: str | None = None, **kw: Any
    ) -> None:
        """`plan_recorded`: what a planner decided (subtasks or a generated workflow), and
        whether it needed its repair round."""
        self._add(
            run_id,
            AuditEvent.PLAN_RECORDED,
            workflow_id,
            step_id=step_id,
            plan=kw.get("plan"),
            repaired=kw.get("repaired"),
            task=kw.get("task"),
        )

    def on_compensation(
        self, *, workflow_id: str, run_id: str, step_id: str, action: str, **kw: Any
    ) -> None:
        """`compensation`: the step undone, the action, and how it went."""
        self._add(
            run_id,
            AuditEvent.COMPENSATION,
            workflow_id,
            step_id=step_id,
            action=action,
            status=kw.get("status"),
            error=kw.get("error"),
        )

    def on_circuit_change(self, *, name: str, old: str, new: str, **_: Any) -> None:
        """`circuit_opened` / `circuit_closed` / `circuit_half_open`, in the trail of the run
        whose call changed it (breakers are shared; a change outside a run is not audited)."""
        current = _CURRENT_RUN.get()
        event = _CIRCUIT_EVENTS.get(new)
        if current is not None and event is not None:
            self._add(current[1], event, None, circuit=name, old=old, new=new)

    def on_approval(
        self, *, workflow_id: str, run_id: str, step_id: str, event: str, actor: str, **kw: Any
    ) -> None:
        """`approval_requested` (once per request and deadline), `approval_approved`,
        `approval_rejected`, `approval_timed_out`; the actor is the approver."""
        try:
            kind = AuditEvent(f"approval_{event}")
        except ValueError:
            return
        request: Mapping[str, Any] = kw.get("request") or {}
        details = {key: request.get(key) for key in _REQUEST_FIELDS}
        details.update(comment=kw.get("comment"), on_timeout=kw.get("on_timeout"))
        details["request_id"] = request.get("request_id") or kw.get("request_id")
        key = None
        if kind is AuditEvent.APPROVAL_REQUESTED:
            key = f"{kind}:{details['request_id']}:{details['deadline']}"
        self._add(
            run_id, kind, workflow_id, actor=actor, step_id=step_id, dedupe_key=key, **details
        )

    def on_rollback(self, *, workflow_id: str, run_id: str, to: str, **_: Any) -> None:
        """`rollback`: the run was restored to rollback point `to`."""
        self._add(run_id, AuditEvent.ROLLBACK, workflow_id, step_id=to, to=to)

    def on_sla_breach(
        self, *, workflow_id: str, run_id: str, step_id: str | None = None, **kw: Any
    ) -> None:
        """`sla_breached`: the step (or, without one, the run) took longer than its target;
        keywords `target_seconds`, `actual_seconds`, `enforced`."""
        self._add(
            run_id,
            AuditEvent.SLA_BREACHED,
            workflow_id,
            step_id=step_id,
            scope="step" if step_id else "run",
            target_seconds=kw.get("target_seconds"),
            actual_seconds=kw.get("actual_seconds"),
            enforced=bool(kw.get("enforced", False)),
        )

    def head(self, run_id: str) -> str | None:
        """The hash of the run's latest entry, kept in state as `audit_head`."""
        return self.ledger.head(run_id)


_DEFERRED = frozenset(
    {
        AuditEvent.STEP_STARTED,
        AuditEvent.STEP_COMPLETED,
        AuditEvent.STEP_FAILED,
        AuditEvent.STEP_SKIPPED,
        AuditEvent.STEP_RETRIED,
        AuditEvent.ROUTE_DECIDED,
        AuditEvent.AGENT_FINISHED,
        AuditEvent.STEP_CACHE_HIT,
    }
)
"""Events raised inside nodes, stored together when the node reports its chain head."""

_CIRCUIT_EVENTS = {
    "open": AuditEvent.CIRCUIT_OPENED,
    "closed": AuditEvent.CIRCUIT_CLOSED,
    "half_open": AuditEvent.CIRCUIT_HALF_OPEN,
}
_REQUEST_FIELDS = ("request_id", "approvers", "min_approvals", "deadline", "escalated", "summary")


def with_audit(
    hooks: Iterable[RunHooks], checkpointer_url: str
) -> tuple[list[RunHooks], AuditHooks]:
    """`hooks` plus the `AuditHooks` every orchestrator has: the caller's own one if it
    passed one, else a new one on the checkpointer's database (opened lazily)."""
    members = list(hooks)
    for member in members:
        if isinstance(member, AuditHooks):
            return members, member
    audit = AuditHooks(AuditLedger.for_url(checkpointer_url))
    return [*members, audit], audit
