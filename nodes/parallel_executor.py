"""The `parallel_executor` node: runs one action-like step (or container) per task."""

from __future__ import annotations

from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from nodes._containers import run_step
from nodes._dag import DAG_KEY, run_dag
from nodes._definition import step_from_data
from nodes._fanout import gather, is_fanout, make_plan, run_worker, worker_record
from nodes._model_calls import TokenMeter
from nodes._outcome import StepOutcome, report
from nodes._plain import to_plain
from nodes._report import finish
from nodes._services import clock_of, services_for
from nodes._step_runner import StepEnv, run_leaf
from nodes._task import StepTask
from policies import map_outputs
from state import (
    MappingError,
    RetryPolicy,
    StepFailedError,
    StepStatus,
    StepType,
    WorkflowStep,
)


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


def meter_for(task: StepTask, env: StepEnv) -> TokenMeter:
    """The run's token meter for one step: usage so far and the budget."""
    budget = task.get("token_budget") or env.services.max_tokens
    return TokenMeter(before=int(task.get("tokens_used") or 0), budget=budget)


def failed_outcome(task: StepTask, error: BaseException, now: float) -> StepOutcome:
    """A failed outcome for a task that could not even start."""
    return StepOutcome(task["step_id"], StepStatus.FAILED, error=error, started=now, finished=now)


async def parallel_executor(task: StepTask, runtime: Runtime[Any]) -> Any:
    """Run the task's step under its policies and record the outcome (or, for a DAG task,
    a group of steps each started when its dependencies ended: see `nodes._dag`)."""
    if DAG_KEY in task:
        return await run_dag(dict(task), runtime, execute)
    return await execute(task, step_from_data(task["step"]), runtime)


async def execute(task: StepTask, step: WorkflowStep, runtime: Runtime[Any]) -> dict[str, Any]:
    """Run `step` (already parsed: the orchestrator runs lone steps inline with this)."""
    now = clock_of(runtime)()
    if is_fanout(step):
        return await _fanout(task, step, runtime)
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


async def _fanout(task: StepTask, step: WorkflowStep, runtime: Runtime[Any]) -> dict[str, Any]:
    """One phase of a fan-out step: plan, one worker, or reduce (see `nodes._fanout`)."""
    env = step_env(task, runtime)
    hooks = env.services.hooks
    ids = {"workflow_id": task["workflow_id"], "run_id": task["run_id"]}
    if (worker := task.get("worker")) is not None:
        wid = task["step_id"]
        try:
            if "input_error" in task:
                raise MappingError(task["input_error"])  # noqa: TRY301 -- recorded below
            outcome = await run_worker(step, env, wid, worker["subtask"], worker["inputs"])
        except GraphBubbleUp:
            raise
        except Exception as exc:  # noqa: BLE001 -- the worker's failure is recorded as data
            outcome = failed_outcome(task, exc, env.services.clock())
        report(outcome, hooks, workflow_id=ids["workflow_id"], run_id=ids["run_id"])
        update: dict[str, Any] = {"worker_results": {wid: worker_record(outcome)}}
        usage = outcome.output.get("usage") if isinstance(outcome.output, dict) else None
        if isinstance(usage, dict) and usage.get("total_tokens"):
            update["token_usage"] = usage  # an agent worker's model calls count too
        if (head := hooks.head(task["run_id"])) is not None:
            update["audit_head"] = head
        return update
    fanout = task.get("fanout")
    if "input_error" in task:
        error = MappingError(task["input_error"])
        return finish(task, runtime, failed_outcome(task, error, env.services.clock()))
    if fanout is None:
        return await _plan_phase(task, step, env, runtime)
    now = env.services.clock()
    outcome = StepOutcome(step.step_id, StepStatus.COMPLETED, started=now, attempts=1)
    try:
        gathered = gather(step.step_id, fanout["plan"], fanout["results"])
        threshold = env.policy_for(step).parallel_failure_threshold
        if gathered["total_steps"] and gathered["success_rate"] < threshold:
            raise StepFailedError(  # noqa: TRY301 -- becomes the step's failure below
                f"{gathered['failed_steps']} of {gathered['total_steps']} workers of step "
                f"'{step.step_id}' failed (success rate {gathered['success_rate']} < "
                f"parallel_failure_threshold {threshold}): {gathered['failures']}"
            )
        output: Any = gathered
        if step.reduce:
            output = await _reduce(step, env, gathered)
        outcome.output = to_plain(output)
        outcome.context_updates = map_outputs(step.output_mapping, outcome.output)
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- recorded as the step's failure
        outcome.status, outcome.error = StepStatus.FAILED, exc
    outcome.finished = env.services.clock()
    return finish(task, runtime, outcome)


async def _plan_phase(
    task: StepTask, step: WorkflowStep, env: StepEnv, runtime: Runtime[Any]
) -> dict[str, Any]:
    ids = {"workflow_id": task["workflow_id"], "run_id": task["run_id"]}
    meter = meter_for(task, env)
    try:
        plan, repaired = await make_plan(
            step, env, task.get("inputs") or {}, task.get("namespace") or {}, meter
        )
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- a planner that fails fails the step
        return finish(task, runtime, failed_outcome(task, exc, env.services.clock()))
    env.services.hooks.on_plan(**ids, step_id=step.step_id, plan=plan, repaired=repaired)
    update: dict[str, Any] = {"fanout_plans": {step.step_id: plan}}
    if meter.used.get("model_calls"):
        update["token_usage"] = dict(meter.used)
    if (head := env.services.hooks.head(task["run_id"])) is not None:
        update["audit_head"] = head
    return update


async def _reduce(step: WorkflowStep, env: StepEnv, gathered: dict[str, Any]) -> Any:
    """The `reduce` action over the workers' results, under the step's policies."""
    name = step.reduce or ""
    accepted = env.services.actions.parameters(name)
    offered = {
        "results": gathered["results"],
        "subtasks": gathered["subtasks"],
        "failures": gathered["failures"],
    }
    inputs = {k: v for k, v in offered.items() if accepted is None or k in accepted}
    reducer = step.model_copy(
        update={
            "step_type": StepType.WORKER,
            "action": name,
            "agent_capability": None,
            "output_mapping": {},
            "input_validation": {},
        }
    )
    outcome = await run_leaf(reducer, env, inputs, None)
    if outcome.status is not StepStatus.COMPLETED:
        raise outcome.error or StepFailedError(f"reduce action '{name}' failed")
    return outcome.output
