"""The `error_recovery` node: decides what a step failure becomes, and runs compensations.

A step that failed after its retries (not skipped under `continue_on_failure`):

1. calls its `error_handlers` (and a rejected approval its `on_reject` step) when it has any:
   they run next and the failure counts as handled (its dependents see it as skipped);
2. otherwise the run is compensated: the `rollback_actions` of completed steps run newest
   first, one per superstep (status `rollback`), a failing compensation is recorded with the
   `compensation_failed` flag and the rest still run; then the run ends `failed` (`timed_out`
   when the failure was the workflow's deadline, which no handler can fix).

The same compensation loop serves `cancel --compensate` and `rollback --to`.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime

from nodes._compensation import (
    compensation_key,
    compensation_plan,
    compensation_record,
    run_compensation,
)
from nodes._definition import workflow_from_state
from nodes._outcome import utc_iso
from nodes._scheduler import unhandled_failures
from nodes._services import clock_of, hooks_of, services_for, step_logger
from nodes._step_runner import StepEnv
from nodes._task import namespace_of, run_key_prefix
from state import AdvancedWorkflow, EnterpriseWorkflowState, StepStatus, WorkflowStatus


def failure_error(state: EnterpriseWorkflowState, step_id: str) -> dict[str, Any]:
    """`{step_id, error_type, message, traceback}` of a failed step."""
    result = state.step_results.get(step_id, {})
    return {
        "step_id": step_id,
        "error_type": result.get("error_type"),
        "message": result.get("error") or "step failed",
        "traceback": result.get("traceback"),
    }


def _handlers(workflow: AdvancedWorkflow, state: EnterpriseWorkflowState, sid: str) -> list[str]:
    step = workflow.step(sid)
    handlers = [str(h) for h in step.error_handlers]
    rejected = state.step_results.get(sid, {}).get("error_type") == "ApprovalRejectedError"
    if rejected and step.approval is not None and step.approval.on_reject:
        handlers.append(str(step.approval.on_reject))
    return [h for h in handlers if h not in state.triggered_steps]


def _end(
    state: EnterpriseWorkflowState, runtime: Runtime[Any], status: WorkflowStatus, **extra: Any
) -> dict[str, Any]:
    now = clock_of(runtime)()
    update: dict[str, Any] = {"status": status.value, "current_steps": [], **extra}
    hooks = hooks_of(runtime)
    if status.is_terminal:
        update["finished_at"] = utc_iso(now)
        hooks.on_run_finished(
            workflow_id=state.workflow_id,
            run_id=state.run_id,
            status=status.value,
            duration=now - (state.started_monotonic or now),
        )
    # the chain head committed with the final checkpoint covers `run_finished`, so removing
    # the tail of a failed or cancelled run's trail is detected too
    if (head := hooks.head(state.run_id)) is not None:
        update["audit_head"] = head
    return update


async def _compensate_next(
    state: EnterpriseWorkflowState, workflow: AdvancedWorkflow, runtime: Runtime[Any]
) -> dict[str, Any]:
    plan = list(state.compensation_plan or [])
    if not plan:
        final = WorkflowStatus(state.outcome_after_compensation or WorkflowStatus.FAILED)
        return _end(state, runtime, final, compensation_plan=None, outcome_after_compensation=None)
    (step_id, action), rest = plan[0], plan[1:]
    services = services_for(runtime, workflow.actions)
    env = StepEnv(
        services=services,
        workflow_id=state.workflow_id,
        run_id=state.run_id,
        retry=workflow.retry_policy,
        max_parallel=workflow.max_parallel_steps,
        deadline=None,
        key_prefix=f"{run_key_prefix(state)}:compensate",
    )
    outcome = await run_compensation(env, workflow, step_id, action, namespace_of(state, workflow))
    record = compensation_record(outcome, action)
    log = step_logger(workflow_id=state.workflow_id, run_id=state.run_id, step_id=step_id)
    log.info("compensation_finished", action=action, status=record["status"])
    hooks = hooks_of(runtime)
    hooks.on_compensation(
        workflow_id=state.workflow_id,
        run_id=state.run_id,
        step_id=step_id,
        action=action,
        status=record["status"],
        error=record.get("error"),
    )
    update: dict[str, Any] = {
        "compensations": {compensation_key(step_id, action): record},
        "compensation_plan": rest,
        "status": WorkflowStatus.ROLLBACK.value,
    }
    if outcome.status is not StepStatus.COMPLETED:
        update["compliance_flags"] = ["compensation_failed"]
    if (head := hooks.head(state.run_id)) is not None:
        update["audit_head"] = head
    return update


async def error_recovery(state: EnterpriseWorkflowState, runtime: Runtime[Any]) -> dict[str, Any]:
    """Handle the first unhandled failure, or run the next compensation."""
    workflow = workflow_from_state(state.workflow, state.workflow_key)
    if state.compensation_plan is not None:
        return await _compensate_next(state, workflow, runtime)
    failures = unhandled_failures(state, workflow)
    if not failures:
        return {}
    sid = failures[0]
    error = failure_error(state, sid)
    log = step_logger(workflow_id=state.workflow_id, run_id=state.run_id, step_id=sid)
    # a run out of time ends timed_out: its handlers could not run in time either
    out_of_time = error["error_type"] == "WorkflowTimeoutError"
    outcome = WorkflowStatus.TIMED_OUT if out_of_time else WorkflowStatus.FAILED
    if not out_of_time and (handlers := _handlers(workflow, state, sid)):
        log.warning("failure_handled", handlers=handlers, error=error["message"])
        return {"triggered_steps": handlers, "handled_failures": [sid]}
    log.error("workflow_failed", error=error["message"], status=outcome.value)
    plan = compensation_plan(workflow, state.completed_steps, state.compensations)
    if not plan:
        return _end(state, runtime, outcome, error=error)
    return {
        "status": WorkflowStatus.ROLLBACK.value,
        "error": error,
        "compensation_plan": plan,
        "outcome_after_compensation": outcome.value,
    }


async def after_recovery(state: EnterpriseWorkflowState) -> str:
    """Compensate again, go back to scheduling, or end."""
    if state.status.is_terminal or state.status is WorkflowStatus.PAUSED:
        return END
    if state.compensation_plan is not None:
        return "error_recovery"
    return "orchestrator"
