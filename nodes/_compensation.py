"""Compensation (a saga): undo completed steps, newest first, one per superstep.

Each compensation runs in its own superstep and is recorded in state when it finishes, so a
crash during compensation re-runs only the compensation that was in flight (with the same
idempotency key) and never one that finished.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from nodes._outcome import StepOutcome
from nodes._step_runner import StepEnv, run_leaf
from state import AdvancedWorkflow, StepStatus, WorkflowStep


def compensation_key(step_id: str, action: str) -> str:
    """The key a compensation is recorded under."""
    return f"{step_id}:{action}"


def compensation_plan(
    workflow: AdvancedWorkflow,
    completed: Sequence[str],
    done: Mapping[str, Any],
    *,
    since: int = 0,
) -> list[list[str]]:
    """`[[step_id, action], ...]` for steps completed at index `since` or later, newest first,
    leaving out compensations that already ran."""
    plan: list[list[str]] = []
    for sid in reversed(list(completed)[since:]):
        try:
            step = workflow.step(sid)
        except KeyError:
            continue
        for action in step.rollback_actions:
            if compensation_key(sid, action) not in done:
                plan.append([sid, action])
    return plan


async def run_compensation(
    env: StepEnv,
    workflow: AdvancedWorkflow,
    step_id: str,
    action: str,
    namespace: Mapping[str, Any],
) -> StepOutcome:
    """Run one compensation action with the step's retry policy.

    The action receives whichever of these keyword arguments it declares: the fields of the
    step's output (when it is a mapping), `output`, `step_id`, `context`.
    """
    step = workflow.step(step_id)
    output = namespace.get("results", {}).get(step_id)
    offered: dict[str, Any] = dict(output) if isinstance(output, Mapping) else {}
    offered.update(output=output, step_id=step_id, context=namespace.get("context", {}))
    accepted = env.services.actions.parameters(action)
    inputs = offered if accepted is None else {k: v for k, v in offered.items() if k in accepted}
    proxy = WorkflowStep(
        step_id=re.sub(r"[^A-Za-z0-9_\-]", "_", f"{step_id}__compensate__{action}"),
        action=action,
        retry_policy=step.retry_policy,
        timeout=step.timeout,
    )
    outcome = await run_leaf(proxy, env, inputs, namespace)
    outcome.step_id = step_id
    return outcome


def compensation_record(outcome: StepOutcome, action: str) -> dict[str, Any]:
    """What state keeps of a compensation that ran."""
    record: dict[str, Any] = {
        "step_id": outcome.step_id,
        "action": action,
        "status": "completed" if outcome.status is StepStatus.COMPLETED else "failed",
        "attempts": outcome.attempts,
    }
    if outcome.error is not None:
        record["error"] = f"{type(outcome.error).__name__}: {outcome.error}"
    return record
