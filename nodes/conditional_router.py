"""The `conditional_router` node: the first matching condition wins, `else` last.

Targets of rules not taken become skipped; the scheduler then skips every step whose awaited
steps were all skipped.
"""

from __future__ import annotations

from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from nodes._definition import step_from_data
from nodes._outcome import StepOutcome
from nodes._report import finish
from nodes._services import clock_of, hooks_of, step_logger
from nodes._task import StepTask
from nodes._trace import step_run
from policies import evaluate_condition
from state import StepStatus, WorkflowStep


def choose(step: WorkflowStep, namespace: dict[str, Any]) -> tuple[int | None, list[str]]:
    """The index of the rule that matched (None: none did) and its targets."""
    for index, rule in enumerate(step.conditions):
        if rule.if_ is None or evaluate_condition(rule.if_, namespace):
            return index, [str(t) for t in rule.targets]
    return None, []


async def conditional_router(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Evaluate the rules and skip the branches not taken."""
    clock = clock_of(runtime)
    step = step_from_data(task["step"])
    outcome = StepOutcome(step.step_id, StepStatus.COMPLETED, started=clock(), attempts=1)
    try:

        async def decide() -> tuple[int | None, list[str]]:
            return choose(step, task.get("namespace") or {})

        index, chosen = await step_run(
            workflow_id=task["workflow_id"],
            run_id=task["run_id"],
            step_id=step.step_id,
            step_type=step.step_type.value,
            inputs=None,
            work=decide,
            output=lambda found: {"rule_index": found[0], "targets": found[1]},
        )
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- a condition that cannot be evaluated fails the step
        outcome.status, outcome.error, outcome.finished = StepStatus.FAILED, exc, clock()
        return finish(task, runtime, outcome)
    rule = step.conditions[index] if index is not None else None
    matched = (rule.if_ if rule.if_ is not None else "else") if rule else None
    outcome.output = {"matched": matched, "rule_index": index, "targets": chosen}
    if rule is None or rule.if_ is None:
        outcome.flags.append("route_fallback")  # no condition held: default branch (or none)
    outcome.finished = clock()
    every = [t for r in step.conditions for t in r.targets]
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
    )
    return finish(task, runtime, outcome)
