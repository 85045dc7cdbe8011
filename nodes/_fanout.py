"""Dynamic orchestrator-worker: plan, fan out one durable worker per subtask, reduce.

A fan-out step is an `orchestrator` step (its `action` or chat model plans subtasks
`{capability, input}`) or any action step with `for_each: path` (one subtask per item). It
runs in three phases, each its own LangGraph task:

1. **plan**: the planner runs under the step's policies; the plan is validated (known
   capabilities, at most `max_subtasks`, the right shape). A model planner gets one repair
   round with the problems fed back. The plan is stored in state (`fanout_plans`) and audited.
2. **workers**: the scheduler sends one task per unfinished subtask (`step_id#n`), all in one
   superstep, so a crash keeps every worker that finished and re-runs only the others. Each
   worker runs under the step's policies and records its result in `worker_results`.
3. **reduce**: the share of workers that succeeded is judged against
   `parallel_failure_threshold`; the optional `reduce` action merges the results into the
   step's output.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from nodes._agents import to_messages
from nodes._model_calls import TokenMeter, guarded_model_call, model_name
from nodes._outcome import StepOutcome
from nodes._plain import to_plain
from nodes._step_runner import StepEnv, run_leaf
from policies import fill_placeholders, map_inputs, resolve_path
from state import PlanError, StepStatus, StepType, WorkflowStep

WORKER_SEP = "#"


class Subtask(BaseModel):
    """One unit of work a planner hands to a worker."""

    capability: str = Field(description="Name of the registered action or agent to do it")
    input: dict[str, Any] = Field(default_factory=dict, description="Its keyword inputs")


class SubtaskPlan(BaseModel):
    """The subtasks a task splits into."""

    subtasks: list[Subtask] = Field(description="The subtasks, each for one capability")


def is_fanout(step: WorkflowStep) -> bool:
    """True for orchestrator steps and steps with `for_each`."""
    return step.step_type is StepType.ORCHESTRATOR or step.for_each is not None


def worker_id(step_id: str, index: int) -> str:
    """The id of a fan-out step's worker `index` (`research#2`)."""
    return f"{step_id}{WORKER_SEP}{index}"


def split_worker(task_id: str) -> tuple[str, int] | None:
    """`(step_id, index)` of a worker id; None for a step id."""
    sid, sep, index = task_id.rpartition(WORKER_SEP)
    return (sid, int(index)) if sep and index.isdigit() else None


def pending_workers(step_id: str, plan: list[Any], done: Mapping[str, Any]) -> list[str]:
    """Worker ids of `plan` without a result yet."""
    ids = (worker_id(step_id, i) for i in range(len(plan)))
    return [wid for wid in ids if wid not in done]


def check_plan(raw: Any, step: WorkflowStep, has_action: Any) -> tuple[list[Any], list[str]]:
    """The plan's subtasks as plain data, and every problem found in it."""
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if isinstance(raw, Mapping) and "subtasks" in raw:
        raw = raw["subtasks"]
    if not isinstance(raw, list):
        return [], [f"a plan is a list of {{capability, input}} objects, got {type(raw).__name__}"]
    problems: list[str] = []
    if len(raw) > step.max_subtasks:
        problems.append(f"{len(raw)} subtasks is more than max_subtasks={step.max_subtasks}")
    subtasks = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("capability"), str):
            problems.append(f"subtask {index} is not an object with a `capability` string")
            continue
        name = item["capability"]
        allowed = step.workers or None
        if (allowed is not None and name not in allowed) or not has_action(name):
            known = ", ".join(allowed or []) or "the registered actions and agents"
            problems.append(f"subtask {index} names unknown capability '{name}' (use {known})")
        subtasks.append({"capability": name, "input": to_plain(item.get("input", {}))})
    return subtasks, problems


async def make_plan(
    step: WorkflowStep,
    env: StepEnv,
    inputs: Mapping[str, Any],
    namespace: Mapping[str, Any],
    meter: TokenMeter,
) -> tuple[list[Any], bool]:
    """The step's validated subtasks and whether a repair round was needed."""
    actions = env.services.actions
    if step.for_each is not None:
        items = resolve_path(step.for_each, namespace)
        if not isinstance(items, list):
            raise PlanError(
                f"for_each of step '{step.step_id}' ({step.for_each}) is "
                f"{type(items).__name__}, not a list; point it at a list"
            )
        if len(items) > step.max_subtasks:
            raise PlanError(
                f"for_each of step '{step.step_id}' has {len(items)} items, more than "
                f"max_subtasks={step.max_subtasks}; raise max_subtasks"
            )
        name = step.action or step.agent_capability or ""
        return [{"capability": name, "input": to_plain(item)} for item in items], False
    if step.action:
        outcome = await run_leaf(
            step.model_copy(update={"output_mapping": {}}), env, inputs, namespace
        )
        if outcome.status is not StepStatus.COMPLETED:
            raise outcome.error or PlanError(f"planner of step '{step.step_id}' failed")
        subtasks, problems = check_plan(outcome.output, step, actions.has_action)
        if problems:
            raise PlanError(
                f"planner action '{step.action}' of step '{step.step_id}' returned an invalid "
                f"plan: {'; '.join(problems)}"
            )
        return subtasks, False
    return await _model_plan(step, env, inputs, namespace, meter)


async def _model_plan(
    step: WorkflowStep,
    env: StepEnv,
    inputs: Mapping[str, Any],
    namespace: Mapping[str, Any],
    meter: TokenMeter,
) -> tuple[list[Any], bool]:
    capability = step.agent_capability or ""
    model = env.services.actions.agent(capability)
    planner = model.with_structured_output(SubtaskPlan, include_raw=True)
    names = step.workers or sorted(getattr(env.services.actions, "names", []))
    guide = (
        f"Split the task into at most {step.max_subtasks} subtasks. Each subtask names one "
        f"capability from: {', '.join(names)}, and its input."
    )
    if step.prompt:
        guide = f"{fill_placeholders(step.prompt, namespace)}\n\n{guide}"
    messages: list[BaseMessage] = [SystemMessage(guide), *to_messages(inputs)]
    problems: list[str] = []
    for round_ in range(2):
        history = list(messages)
        result = await guarded_model_call(
            step,
            env,
            meter,
            capability,
            functools.partial(planner.ainvoke, history),
            name=model_name(model, capability),
        )
        parsed = result.get("parsed") if isinstance(result, Mapping) else result
        if parsed is None:
            problems = [f"the reply is not a plan: {result.get('parsing_error')}"]
        else:
            subtasks, problems = check_plan(parsed, step, env.services.actions.has_action)
            if not problems:
                return subtasks, round_ > 0
        messages.append(
            HumanMessage(
                "Your plan is invalid: " + "; ".join(problems) + ". Return a corrected plan."
            )
        )
    raise PlanError(
        f"planner '{capability}' of step '{step.step_id}' gave an invalid plan twice: "
        f"{'; '.join(problems)}; improve its prompt or register the capabilities it needs"
    )


def worker_inputs(
    step: WorkflowStep, subtask: Mapping[str, Any], namespace: Mapping[str, Any]
) -> dict[str, Any]:
    """A worker's keyword inputs: `input_mapping` over the namespace plus `item` (for_each),
    or the subtask's own input (planned)."""
    if step.for_each is not None:
        return map_inputs(step.input_mapping, {**namespace, "item": subtask["input"]})
    given = subtask.get("input")
    return dict(given) if isinstance(given, Mapping) else {"input": given}


async def run_worker(
    step: WorkflowStep, env: StepEnv, wid: str, subtask: Mapping[str, Any], inputs: Any
) -> StepOutcome:
    """One worker under the step's policies (retry, timeout, breaker of its capability)."""
    worker = step.model_copy(
        update={
            "step_id": wid,
            "step_type": StepType.WORKER,
            "action": subtask["capability"],
            "agent_capability": None,
            "output_mapping": {},
            "input_validation": {} if step.for_each is None else step.input_validation,
        }
    )
    outcome = await run_leaf(worker, env, inputs, None)
    outcome.step_type = StepType.WORKER.value
    return outcome


def worker_record(outcome: StepOutcome) -> dict[str, Any]:
    """What state keeps of a finished worker."""
    record: dict[str, Any] = {"status": outcome.status.value, "attempts": outcome.attempts}
    if outcome.status is StepStatus.COMPLETED:
        record["output"] = outcome.output
    elif outcome.error is not None:
        record["error"] = f"{type(outcome.error).__name__}: {outcome.error}"
    return record


def gather(step_id: str, plan: list[Any], done: Mapping[str, Any]) -> dict[str, Any]:
    """The fan-out result: `{subtasks, results, failures, total_steps, successful_steps,
    failed_steps, success_rate}` (results in plan order, failed ones left out)."""
    records = [done.get(worker_id(step_id, i), {}) for i in range(len(plan))]
    ok = [r for r in records if r.get("status") == StepStatus.COMPLETED.value]
    failures = [
        {"subtask": i, "capability": plan[i]["capability"], "error": r.get("error")}
        for i, r in enumerate(records)
        if r.get("status") != StepStatus.COMPLETED.value
    ]
    total = len(plan)
    return {
        "subtasks": plan,
        "results": [r.get("output") for r in ok],
        "failures": failures,
        "total_steps": total,
        "successful_steps": len(ok),
        "failed_steps": len(failures),
        "success_rate": round(len(ok) / total, 6) if total else 1.0,
    }
