"""The `error_recovery` node: decides what a step failure becomes.

A step that failed after its retries (and was not skipped under `continue_on_failure`) ends the
run `failed`, with the failing step's error recorded in `error`.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime

from nodes._definition import workflow_from_state
from nodes._outcome import utc_iso
from nodes._services import clock_of, hooks_of, step_logger
from state import EnterpriseWorkflowState, WorkflowStatus


def first_failure(state: EnterpriseWorkflowState) -> dict[str, Any]:
    """`{step_id, error_type, message}` of the earliest failed top-level step."""
    workflow = workflow_from_state(state.workflow, state.workflow_key)
    top = {s.step_id for s in workflow.steps}
    sid = next(s for s in state.failed_steps if s in top)
    result = state.step_results.get(sid, {})
    return {
        "step_id": sid,
        "error_type": result.get("error_type"),
        "message": result.get("error") or "step failed",
        "traceback": result.get("traceback"),
    }


async def error_recovery(state: EnterpriseWorkflowState, runtime: Runtime[Any]) -> dict[str, Any]:
    """End the run as failed, recording the error of the step that failed."""
    error = first_failure(state)
    step_logger(workflow_id=state.workflow_id, run_id=state.run_id, step_id=error["step_id"]).error(
        "workflow_failed", error=error["message"]
    )
    now = clock_of(runtime)()
    hooks_of(runtime).on_run_finished(
        workflow_id=state.workflow_id,
        run_id=state.run_id,
        status=WorkflowStatus.FAILED.value,
        duration=now - (state.started_monotonic or now),
    )
    return {
        "status": WorkflowStatus.FAILED.value,
        "error": error,
        "current_steps": [],
        "finished_at": utc_iso(now),
    }


def after_recovery(state: EnterpriseWorkflowState) -> str:
    """Back to the orchestrator when recovery let the run go on, else the end."""
    return END if state.status.is_terminal else "orchestrator"
