"""`determine_execution_path`: the orchestrator's routing function."""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.types import Send

from nodes._dag import dag_enabled, dag_group, dag_task
from nodes._definition import workflow_from_state
from nodes._scheduler import node_for, unhandled_failures
from nodes._task import step_of, task_for
from state import EnterpriseWorkflowState, StepType, WorkflowStatus

EXECUTOR_NODES = ("parallel_executor", "conditional_router", "react_agent", "human_approval")
"""Nodes that run steps; each receives a `StepTask` and returns to the orchestrator."""


async def determine_execution_path(
    state: EnterpriseWorkflowState, config: RunnableConfig
) -> list[Send] | str:
    """Send each ready step to the node for its type, or go to error_recovery, or end.

    With DAG tasks on, ready action steps go out together as one task that starts each of
    them (and the steps they unblock) when its own dependencies end."""
    if state.status.is_terminal or state.status is WorkflowStatus.PAUSED or not state.workflow_key:
        return END
    workflow = workflow_from_state(state.workflow, state.workflow_key)
    if state.compensation_plan is not None or unhandled_failures(state, workflow):
        return "error_recovery"
    if not state.current_steps:
        return "orchestrator"  # the orchestrator ran a lone step itself: schedule again
    sends = []
    group = dag_group(workflow, state.current_steps) if dag_enabled(config) else []
    if group:
        busy = [s for s in state.current_steps if s not in group]
        busy = [s for s in busy if step_of(workflow, s).step_type is not StepType.HUMAN_APPROVAL]
        slots = workflow.max_parallel_steps - len(busy)
        sends.append(Send("parallel_executor", dag_task(state, group, slots)))
    for sid in state.current_steps:
        if sid in group:
            continue
        step = step_of(workflow, sid)
        sends.append(Send(node_for(step.step_type), task_for(state, workflow, sid)))
    return sends
