"""The `conditional_router` node: the first matching condition wins, `else` last; or a
chat model picks the route.

With `router: {capability, routes: {step_id: description}}`, when no `if` rule matched the
model chooses one route with structured output (a route and its reason). With
`adaptive_routing: true` on the workflow, a conditional with an `agent_capability` asks that
model to choose among its rules' targets when no `if` matched. An invalid choice falls back
to the `else` rule and sets the `route_invalid` flag. The decision, the model's reason and
who decided go to the hooks (the audit trail). Targets of rules not taken become skipped;
the scheduler then skips every step whose awaited steps were all skipped.
"""

from __future__ import annotations

import functools
from typing import Any

from langchain_core.messages import SystemMessage
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from nodes._agents import to_messages
from nodes._definition import step_from_data
from nodes._model_calls import guarded_model_call, model_name
from nodes._outcome import StepOutcome
from nodes._report import finish
from nodes._services import clock_of, hooks_of, step_logger
from nodes._task import StepTask
from nodes._trace import step_run
from nodes.parallel_executor import meter_for, step_env
from policies import evaluate_condition, fill_placeholders
from state import StepStatus, WorkflowStep


def choose(step: WorkflowStep, namespace: dict[str, Any]) -> tuple[int | None, list[str]]:
    """The index of the rule that matched (None: none did) and its targets."""
    for index, rule in enumerate(step.conditions):
        if rule.if_ is None or evaluate_condition(rule.if_, namespace):
            return index, [str(t) for t in rule.targets]
    return None, []


class RouteChoice(BaseModel):
    """The branch a routing model picked."""

    route: str = Field(description="The id of the chosen route, exactly as listed")
    reason: str = Field(description="One sentence on why this route fits")


def _model_routes(step: WorkflowStep, adaptive: bool) -> dict[str, str]:
    """`{route: description}` the model may choose from (empty: no model routes)."""
    if step.router is not None:
        return {str(k): v for k, v in step.router.routes.items()}
    if adaptive and step.agent_capability:
        return {
            str(t): f"when {rule.if_}" for rule in step.conditions if rule.if_ for t in rule.then
        }
    return {}


async def _ask_model(
    step: WorkflowStep, task: StepTask, runtime: Runtime[Any], routes: dict[str, str]
) -> tuple[RouteChoice | None, dict[str, int]]:
    env = step_env(task, runtime)
    meter = meter_for(task, env)
    capability = step.router.capability if step.router else step.agent_capability or ""
    model = env.services.actions.agent(capability)
    namespace = task.get("namespace") or {}
    listed = "\n".join(f"- {route}: {text}" for route, text in routes.items())
    guide = f"Choose the one route that fits the case best. Routes:\n{listed}"
    if step.router is not None and step.router.prompt:
        guide = f"{fill_placeholders(step.router.prompt, namespace)}\n\n{guide}"
    case = task.get("inputs") or {"context": namespace.get("context")}
    messages = [SystemMessage(guide), *to_messages(case)]
    chooser = model.with_structured_output(RouteChoice, include_raw=True)
    result = await guarded_model_call(
        step,
        env,
        meter,
        capability,
        functools.partial(chooser.ainvoke, messages),
        name=model_name(model, capability),
    )
    parsed = result.get("parsed") if isinstance(result, dict) else None
    if isinstance(parsed, dict):
        parsed = RouteChoice.model_validate(parsed)
    return parsed, dict(meter.used)


async def conditional_router(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Evaluate the rules (or ask the routing model) and skip the branches not taken; the
    decision runs as the traced child run `step:<id>` (a routing model's call nests in it)."""
    step = task["step"]
    return await step_run(
        workflow_id=task["workflow_id"],
        run_id=task["run_id"],
        step_id=task["step_id"],
        step_type=str(step.get("step_type", "conditional")),
        inputs=task.get("inputs"),
        work=lambda: _route(task, runtime),
        output=lambda update: update.get("step_results", {}).get(task["step_id"]),
    )


async def _route(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    clock = clock_of(runtime)
    step = step_from_data(task["step"])
    outcome = StepOutcome(step.step_id, StepStatus.COMPLETED, started=clock(), attempts=1)
    decided: dict[str, Any] = {}
    usage: dict[str, int] = {}
    try:
        index, chosen = choose(step, task.get("namespace") or {})
        rule = step.conditions[index] if index is not None else None
        routes = _model_routes(step, bool(task.get("adaptive")))
        if routes and (rule is None or rule.if_ is None):
            choice, usage = await _ask_model(step, task, runtime, routes)
            decided = {
                "decided_by": step.router.capability if step.router else step.agent_capability
            }
            if choice is not None and choice.route in routes:
                index, chosen = None, [choice.route]
                decided.update(choice=choice.route, reason=choice.reason)
            else:
                outcome.flags.append("route_invalid")
                decided.update(
                    choice=choice.route if choice else None,
                    reason=(choice.reason if choice else "no structured choice")
                    + f"; not one of {sorted(routes)}, fell back to else",
                )
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- a condition that cannot be evaluated fails the step
        outcome.status, outcome.error, outcome.finished = StepStatus.FAILED, exc, clock()
        update = finish(task, runtime, outcome)
        if usage:
            update["token_usage"] = usage
        return update
    rule = step.conditions[index] if index is not None else None
    if decided.get("choice") in chosen:
        matched: str | None = "model"
    else:
        matched = (rule.if_ if rule.if_ is not None else "else") if rule else None
    outcome.output = {"matched": matched, "rule_index": index, "targets": chosen, **decided}
    if matched != "model" and (rule is None or rule.if_ is None):
        outcome.flags.append("route_fallback")  # no condition held: default branch (or none)
    outcome.finished = clock()
    every = [t for r in step.conditions for t in r.targets]
    every += list(step.router.routes) if step.router else []
    not_taken = sorted({t for t in every if t not in chosen})
    for target in not_taken:
        outcome.children.append(
            StepOutcome(
                target,
                StepStatus.SKIPPED,
                started=outcome.finished,
                finished=outcome.finished,
                reason=f"branch not taken by conditional '{step.step_id}'",
            )
        )
    step_logger(workflow_id=task["workflow_id"], run_id=task["run_id"], step_id=step.step_id).info(
        "route_decided", matched=matched, targets=chosen
    )
    hooks_of(runtime).on_route(
        workflow_id=task["workflow_id"],
        run_id=task["run_id"],
        step_id=step.step_id,
        matched=matched,
        targets=list(chosen),
        **decided,
    )
    update = finish(task, runtime, outcome)
    if usage:
        update["token_usage"] = usage
    return update
