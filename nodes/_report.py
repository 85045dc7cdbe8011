"""Ending a step task: tell the hooks, then turn the outcome into a state update."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from nodes._outcome import StepOutcome, outcome_update, report
from nodes._services import hooks_of
from nodes._task import StepTask


def finish(task: StepTask, runtime: Runtime[Any], outcome: StepOutcome) -> dict[str, Any]:
    """The state update of a finished task, after the hooks heard about it."""
    if not outcome.step_type:
        outcome.step_type = str(task["step"].get("step_type", "sequential"))
    hooks = hooks_of(runtime)
    report(outcome, hooks, workflow_id=task["workflow_id"], run_id=task["run_id"])
    update = outcome_update(outcome)
    if (head := hooks.head(task["run_id"])) is not None:
        update["audit_head"] = head
    return update
