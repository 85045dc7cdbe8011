"""Parallel containers and loops: steps that run other steps inside one task.

Children of a parallel container run concurrently under `max_parallel_steps`; the container
succeeds when the share of children that succeeded reaches `parallel_failure_threshold`. A loop
runs its body in order while `loop_condition` holds, at most `loop_max_iterations` times; a
condition that reads values the body has not produced yet (they are None) lets the first
iteration run, so `context.score < 0.9` works before any score exists.
"""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from nodes._events import emit
from nodes._outcome import StepOutcome
from nodes._step_runner import StepEnv, run_leaf
from nodes._trace import handlers_listening, step_run
from policies import evaluate, evaluate_condition, map_inputs, map_outputs
from state import OrchestratorError, StepFailedError, StepStatus, StepType, WorkflowStep

ADMIT_FACTOR = 2
"""A parallel container admits this many children per concurrency slot at a time."""


async def run_step(
    step: WorkflowStep,
    env: StepEnv,
    namespace: Mapping[str, Any],
    *,
    inputs: Mapping[str, Any] | None = None,
) -> StepOutcome:
    """Run any executor step; `inputs` are mapped from `namespace` when not given.

    The step runs as the traced child run `step:<id>` (children of containers nest under it).
    """
    if inputs is None and step.step_type not in (StepType.PARALLEL, StepType.LOOP):
        inputs = map_inputs(step.input_mapping, namespace)
    return await step_run(
        workflow_id=env.workflow_id,
        run_id=env.run_id,
        step_id=step.step_id,
        step_type=step.step_type.value,
        inputs=inputs,
        work=lambda: _run_step(step, env, namespace, inputs),
        failure=lambda outcome: outcome.error if outcome.status is StepStatus.FAILED else None,
        output=lambda outcome: outcome.output,
        listening=env.traced,
    )


async def _run_step(
    step: WorkflowStep,
    env: StepEnv,
    namespace: Mapping[str, Any],
    inputs: Mapping[str, Any] | None,
) -> StepOutcome:
    if step.step_type in (StepType.PARALLEL, StepType.LOOP):
        # leaves announce themselves when their first attempt starts; containers do it here
        emit(
            "step_started",
            workflow_id=env.workflow_id,
            run_id=env.run_id,
            step_id=step.step_id,
            step_type=step.step_type.value,
        )
    if step.step_type is StepType.PARALLEL:
        outcome = await run_parallel(step, env, namespace)
    elif step.step_type is StepType.LOOP:
        outcome = await run_loop(step, env, namespace)
    else:
        outcome = await run_leaf(step, env, inputs or {}, namespace)
    outcome.step_type = step.step_type.value
    return outcome


async def _child(step: WorkflowStep, env: StepEnv, namespace: Mapping[str, Any]) -> StepOutcome:
    try:
        return await run_step(step, env, namespace)
    except OrchestratorError as exc:  # e.g. a mapping error: the child failed, not the run
        now = env.services.clock()
        return StepOutcome(step.step_id, StepStatus.FAILED, error=exc, started=now, finished=now)


async def run_parallel(
    step: WorkflowStep, env: StepEnv, namespace: Mapping[str, Any]
) -> StepOutcome:
    """Run the children concurrently and judge the share that succeeded."""
    started, cpu = env.services.clock(), time.process_time()
    inner = replace(env, gate=asyncio.Semaphore(env.max_parallel), traced=handlers_listening())
    # Children past twice the cap wait before their bookkeeping (hooks, audit, mappings):
    # started all at once, those preludes would keep the event loop busy while the first
    # children's actions end, delaying the hand-over of their slots.
    admitted = asyncio.Semaphore(ADMIT_FACTOR * env.max_parallel)

    async def admit(c: WorkflowStep) -> StepOutcome:
        async with admitted:
            return await _child(c, inner, namespace)

    children = await asyncio.gather(*(admit(c) for c in step.parallel_steps))
    succeeded = [c for c in children if c.status is StepStatus.COMPLETED]
    failures = {
        c.step_id: f"{type(c.error).__name__}: {c.error}"
        for c in children
        if c.status is not StepStatus.COMPLETED and c.error
    }
    total = len(children)
    rate = len(succeeded) / total if total else 1.0
    output = {
        "total_steps": total,
        "successful_steps": len(succeeded),
        "failed_steps": total - len(succeeded),
        "success_rate": round(rate, 4),
        "results": {c.step_id: c.output for c in succeeded},
        "failures": failures,
    }
    outcome = StepOutcome(
        step.step_id,
        StepStatus.COMPLETED,
        output=output,
        started=started,
        attempts=1,
        children=list(children),
    )
    for child in children:
        outcome.context_updates.update(child.context_updates)
    threshold = env.policy_for(step).parallel_failure_threshold
    if rate + 1e-9 < threshold:
        outcome.status = StepStatus.FAILED
        outcome.error = StepFailedError(
            f"parallel step '{step.step_id}': {len(succeeded)} of {total} children succeeded "
            f"({rate:.0%}), below parallel_failure_threshold {threshold:.0%}; failures: "
            + "; ".join(f"{k}: {v}" for k, v in failures.items())
        )
        if env.policy_for(step).continue_on_failure:
            outcome.status, outcome.reason = StepStatus.SKIPPED, str(outcome.error)
    else:
        outcome.context_updates.update(_map_own_outputs(step, output))
    outcome.finished, outcome.cpu_seconds = env.services.clock(), time.process_time() - cpu
    return outcome


def _map_own_outputs(step: WorkflowStep, output: Any) -> dict[str, Any]:
    return map_outputs(step.output_mapping, output)


def _reads_unset(source: str, namespace: Mapping[str, Any]) -> bool:
    """True when the expression reads a dotted name that is not set yet."""
    for node in ast.walk(ast.parse(source.strip(), mode="eval")):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            parts: list[str] = []
            cur: ast.expr = node
            while isinstance(cur, ast.Attribute):
                parts.append(cur.attr)
                cur = cur.value
            dotted = ".".join([getattr(cur, "id", ""), *reversed(parts)])
            if isinstance(cur, ast.Name) and evaluate(dotted, namespace) is None:
                return True
    return False


async def run_loop(step: WorkflowStep, env: StepEnv, namespace: Mapping[str, Any]) -> StepOutcome:
    """Run the body in order while the condition holds, at most the iteration limit."""
    started, cpu = env.services.clock(), time.process_time()
    ns: dict[str, Any] = {
        **namespace,
        "context": dict(namespace.get("context", {})),
        "results": dict(namespace.get("results", {})),
    }
    condition = step.loop_condition or "false"
    outcome = StepOutcome(step.step_id, StepStatus.COMPLETED, started=started, attempts=1)
    history: list[dict[str, Any]] = []
    iterations, stopped_by = 0, "condition"
    while True:
        holds = evaluate_condition(condition, ns)
        if not holds and not (iterations == 0 and _reads_unset(condition, ns)):
            break
        if iterations >= step.loop_max_iterations:
            stopped_by = "limit"
            outcome.flags.append("loop_limit_reached")
            break
        iterations += 1
        body_env = replace(env, key_prefix=f"{env.key_prefix}:{step.step_id}#{iterations}")
        round_outputs: dict[str, Any] = {}
        for body_step in step.body:
            child = await _child(body_step, body_env, ns)
            outcome.children = [c for c in outcome.children if c.step_id != child.step_id]
            outcome.children.append(child)
            if child.status is StepStatus.FAILED:
                outcome.status, outcome.error = (
                    StepStatus.FAILED,
                    StepFailedError(
                        f"loop '{step.step_id}' iteration {iterations}: step '{child.step_id}' "
                        f"failed: {type(child.error).__name__}: {child.error}"
                    ),
                )
                break
            if child.status is StepStatus.COMPLETED:
                round_outputs[child.step_id] = child.output
                ns["results"][child.step_id] = child.output
                ns["context"].update(child.context_updates)
                outcome.context_updates.update(child.context_updates)
        history.append(round_outputs)
        if outcome.status is StepStatus.FAILED:
            break
    outcome.iterations = iterations
    outcome.output = {
        "iterations": iterations,
        "stopped_by": stopped_by,
        "last": history[-1] if history else {},
    }
    if outcome.status is StepStatus.COMPLETED:
        outcome.context_updates.update(_map_own_outputs(step, outcome.output))
    elif env.policy_for(step).continue_on_failure:
        outcome.status, outcome.reason = StepStatus.SKIPPED, str(outcome.error)
    outcome.finished, outcome.cpu_seconds = env.services.clock(), time.process_time() - cpu
    return outcome
