"""`StepTask`: the payload of the `Send` that dispatches one step.

It carries what the step needs and nothing that grows with the run: an action step gets its
already-mapped inputs; containers, conditionals and webhooks get the namespace they read.
"""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict

from nodes._fanout import WORKER_SEP, is_fanout, split_worker, worker_inputs
from nodes._sla import step_targets
from policies import map_inputs
from state import AdvancedWorkflow, EnterpriseWorkflowState, MappingError, StepType, WorkflowStep

_NEEDS_NAMESPACE = frozenset(
    {
        StepType.PARALLEL,
        StepType.LOOP,
        StepType.CONDITIONAL,
        StepType.WEBHOOK,
        StepType.REACT,
        StepType.HUMAN_APPROVAL,
        StepType.ROLLBACK,
    }
)


class StepTask(TypedDict):
    """Input of the nodes that run a step."""

    step_id: str
    step: dict[str, Any]
    workflow_id: str
    run_id: str
    actions: str | None
    retry: dict[str, Any]
    max_parallel: int
    deadline: float | None
    inputs: NotRequired[dict[str, Any]]
    input_error: NotRequired[str]
    namespace: NotRequired[dict[str, Any]]
    dispatched_at: NotRequired[float]
    key_prefix: NotRequired[str]
    sla: NotRequired[dict[str, Any]]
    stored_bytes: NotRequired[int]
    token_budget: NotRequired[int]
    tokens_used: NotRequired[int]
    fanout: NotRequired[dict[str, Any]]
    adaptive: NotRequired[bool]
    worker: NotRequired[dict[str, Any]]
    version: NotRequired[str]
    dag: NotRequired[dict[str, Any]]


def run_key_prefix(state: EnterpriseWorkflowState) -> str:
    """Idempotency keys start with this: the run id, plus the rollback count after a rollback
    (a step re-executed after a rollback is a new effect, not a retry)."""
    return f"{state.run_id}~r{state.rollback_count}" if state.rollback_count else state.run_id


def namespace_of(state: EnterpriseWorkflowState, workflow: AdvancedWorkflow) -> dict[str, Any]:
    """The namespace paths and conditions read: `{input, context, results, globals}`."""
    return {
        "input": state.input,
        "context": state.context,
        "results": state.intermediate_results,
        "globals": workflow.global_variables,
    }


def build_task(
    state: EnterpriseWorkflowState, workflow: AdvancedWorkflow, step: WorkflowStep
) -> StepTask:
    """The task for `step`, with inputs mapped now (a mapping error travels in the task)."""
    timeout = workflow.timeout
    started = state.started_monotonic
    task = StepTask(
        step_id=step.step_id,
        step=step.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        workflow_id=state.workflow_id,
        run_id=state.run_id,
        actions=workflow.actions,
        retry=workflow.retry_policy.model_dump(mode="json"),
        max_parallel=workflow.max_parallel_steps,
        deadline=(started + timeout) if timeout and started is not None else None,
    )
    if state.rollback_count:
        task["key_prefix"] = run_key_prefix(state)
    if state.stored_bytes:
        task["stored_bytes"] = state.stored_bytes
    if state.decided_at is not None:
        task["dispatched_at"] = state.decided_at
    if any(s.cacheable for s in (step, *step.children)) or any(
        c.cacheable for child in step.children for c in child.children
    ):
        task["version"] = workflow.version  # part of the step cache's key
    if (sla := step_targets(workflow.sla_targets, step)) is not None:
        task["sla"] = sla
    if workflow.adaptive_routing and step.step_type is StepType.CONDITIONAL:
        task["adaptive"] = True
    if workflow.sla_targets.max_tokens is not None:
        task["token_budget"] = workflow.sla_targets.max_tokens
    if used := state.token_usage.get("total_tokens"):
        task["tokens_used"] = int(used)
    namespace = namespace_of(state, workflow)
    if step.step_type in _NEEDS_NAMESPACE or (
        is_fanout(step) and step.step_id not in state.fanout_plans
    ):
        task["namespace"] = namespace
    if is_fanout(step) and step.step_id in state.fanout_plans:
        plan = state.fanout_plans[step.step_id]
        prefix = f"{step.step_id}{WORKER_SEP}"
        done = {k: v for k, v in state.worker_results.items() if k.startswith(prefix)}
        task["fanout"] = {"plan": plan, "results": done}
    try:
        task["inputs"] = map_inputs(step.input_mapping, namespace)
    except MappingError as exc:
        task["input_error"] = str(exc)
    return task


def task_for(state: EnterpriseWorkflowState, workflow: AdvancedWorkflow, task_id: str) -> StepTask:
    """The task of a step id, or of a fan-out worker id (`step#n`)."""
    worker = split_worker(task_id)
    if worker is None:
        return build_task(state, workflow, workflow.step(task_id))
    sid, index = worker
    step = workflow.step(sid)
    task = build_task(state.model_copy(update={"fanout_plans": {}}), workflow, step)
    task.pop("namespace", None)
    task.pop("input_error", None)
    task["step_id"] = task_id
    subtask = state.fanout_plans[sid][index]
    try:
        inputs = worker_inputs(step, subtask, namespace_of(state, workflow))
    except MappingError as exc:
        inputs = {}
        task["input_error"] = str(exc)
    task["worker"] = {"subtask": subtask, "inputs": inputs}
    return task


def step_of(workflow: AdvancedWorkflow, task_id: str) -> WorkflowStep:
    """The step a task id runs (a worker id runs its fan-out step)."""
    worker = split_worker(task_id)
    return workflow.step(worker[0] if worker else task_id)
