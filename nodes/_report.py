"""Ending a step task: check its SLA, tell the hooks, then turn the outcome into a state
update."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from nodes._outcome import StepOutcome, outcome_update, report
from nodes._services import hooks_of
from nodes._sla import SLA_FLAG, announce, step_breaches
from nodes._task import StepTask
from state import SlaBreachError, StepStatus


def finish(task: StepTask, runtime: Runtime[Any], outcome: StepOutcome) -> dict[str, Any]:
    """The state update of a finished task, after the hooks heard about it."""
    if not outcome.step_type:
        outcome.step_type = str(task["step"].get("step_type", "sequential"))
    hooks = hooks_of(runtime)
    ids = {"workflow_id": task["workflow_id"], "run_id": task["run_id"]}
    for breach in step_breaches(task.get("sla"), _durations(outcome)):
        announce(breach, hooks, **ids)
        outcome.flags.append(SLA_FLAG)
        if breach.enforced and outcome.status is StepStatus.COMPLETED:
            outcome.status, outcome.error = StepStatus.FAILED, SlaBreachError(breach.message)
            outcome.context_updates = {}
    report(
        outcome,
        hooks,
        workflow_id=task["workflow_id"],
        run_id=task["run_id"],
        unmetered=_unmetered(task["step"]),
    )
    update = outcome_update(outcome)
    if (head := hooks.head(task["run_id"])) is not None:
        update["audit_head"] = head
    return update


def _unmetered(step: dict[str, Any]) -> frozenset[str]:
    """Ids of the step and nested steps declaring `metrics_enabled: false`."""
    found: set[str] = set()
    stack = [step]
    while stack:
        item = stack.pop()
        if item.get("metrics_enabled") is False:
            found.add(str(item.get("step_id")))
        stack.extend(item.get("parallel_steps") or [])
        stack.extend(item.get("body") or [])
    return frozenset(found)


def _durations(outcome: StepOutcome) -> list[tuple[str, float]]:
    """`(step_id, seconds)` of the step and its nested steps that ran."""
    return [
        (item.step_id, item.finished - item.started)
        for item in outcome.flatten()
        if item.status is not StepStatus.SKIPPED and item.finished
    ]
