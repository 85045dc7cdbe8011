"""The `parallel_executor` node: runs one action-like step (or container) per task."""

from __future__ import annotations

from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from nodes._containers import run_step
from nodes._definition import step_from_data
from nodes._outcome import StepOutcome
from nodes._report import finish
from nodes._services import clock_of, services_for
from nodes._step_runner import StepEnv
from nodes._task import StepTask
from state import MappingError, RetryPolicy, StepStatus, StepType, WorkflowStep


def step_env(task: StepTask, runtime: Runtime[Any]) -> StepEnv:
    """The shared environment of the steps run by one task."""
    return StepEnv(
        services=services_for(runtime, task["actions"]),
        workflow_id=task["workflow_id"],
        run_id=task["run_id"],
        retry=RetryPolicy.model_validate(task["retry"]),
        max_parallel=task["max_parallel"],
        deadline=task["deadline"],
        key_prefix=task.get("key_prefix", task["run_id"]),
        stored_bytes=task.get("stored_bytes", 0),
        version=task.get("version"),
    )


def failed_outcome(task: StepTask, error: BaseException, now: float) -> StepOutcome:
    """A failed outcome for a task that could not even start."""
    return StepOutcome(task["step_id"], StepStatus.FAILED, error=error, started=now, finished=now)


async def parallel_executor(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Run the task's step under its policies and record the outcome."""
    return await execute(task, step_from_data(task["step"]), runtime)


async def execute(task: StepTask, step: WorkflowStep, runtime: Runtime[Any]) -> dict[str, Any]:
    """Run `step` (already parsed: the orchestrator runs lone steps inline with this)."""
    now = clock_of(runtime)()
    if "input_error" in task:
        return finish(task, runtime, failed_outcome(task, MappingError(task["input_error"]), now))
    if step.step_type is StepType.ROLLBACK:
        done = StepOutcome(
            step.step_id, StepStatus.COMPLETED, started=now, finished=now, attempts=1
        )
        done.output = {"rollback_to": step.rollback_to}
        # the orchestrator carries the request out at the next step boundary
        return {
            **finish(task, runtime, done),
            "control": "rollback",
            "rollback_to": step.rollback_to,
        }
    try:
        env = step_env(task, runtime)
        outcome = await run_step(step, env, task.get("namespace") or {}, inputs=task.get("inputs"))
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- recorded as the step's failure, never lost
        outcome = failed_outcome(task, exc, clock_of(runtime)())
    return finish(task, runtime, outcome)
