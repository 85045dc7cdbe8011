"""Applying recommendations: a new, validated definition with a bumped version.

The original is never touched: the definition is copied as plain data, each `set` change is
made on the copy, and `AdvancedWorkflow.from_dict` validates the result (a change that would
break the definition raises `WorkflowDefinitionError` naming every problem).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from orchestrator.optimizer._recommendation import OptimizationRecommendation
from state import AdvancedWorkflow, InvalidInputError


def bump_version(version: str) -> str:
    """`1.0` -> `1.1`, `2` -> `3`, `v1.9` -> `v1.10`, `beta` -> `beta.1`."""
    match = re.fullmatch(r"(.*?)(\d+)", version)
    if match is None:
        return f"{version}.1"
    return f"{match.group(1)}{int(match.group(2)) + 1}"


def _find_step(steps: list[dict[str, Any]], step_id: str) -> dict[str, Any] | None:
    for step in steps:
        if step.get("step_id") == step_id:
            return step
        for key in ("parallel_steps", "body"):
            found = _find_step(step.get(key) or [], step_id)
            if found is not None:
                return found
    return None


def _set(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for name in parents:
        target = target.setdefault(name, {})
    target[last] = value


def apply_recommendations(
    workflow: AdvancedWorkflow, recommendations: Iterable[OptimizationRecommendation]
) -> AdvancedWorkflow:
    """`workflow` with the changes of every applicable recommendation, version bumped and
    `optimized_from` recording the base version, the ids applied and the prediction."""
    recs = [r for r in recommendations if r.specific_changes]
    data = workflow.to_data()
    for rec in recs:
        if rec.workflow_id != workflow.workflow_id:
            raise InvalidInputError(
                f"recommendation '{rec.id}' is for workflow '{rec.workflow_id}', not "
                f"'{workflow.workflow_id}'; apply it to the workflow it was made for"
            )
        for edit in rec.specific_changes:
            if edit.get("op") != "set":
                raise InvalidInputError(
                    f"recommendation '{rec.id}' has an edit of unknown op {edit.get('op')!r}; "
                    "only `set` edits can be applied"
                )
            sid = edit.get("step_id")
            target = data if sid is None else _find_step(data["steps"], str(sid))
            if target is None:
                raise InvalidInputError(
                    f"recommendation '{rec.id}' changes step '{sid}', which workflow "
                    f"'{workflow.workflow_id}' version {workflow.version} does not have; "
                    "recommend again for this version"
                )
            _set(target, str(edit["field"]), edit["to"])
    baseline = next(
        (r.evidence.get("baseline_seconds") for r in recs if "baseline_seconds" in r.evidence),
        None,
    )
    predicted = next(
        (r.evidence.get("predicted_seconds") for r in recs if "predicted_seconds" in r.evidence),
        None,
    )
    data["version"] = bump_version(workflow.version)
    data["optimized_from"] = {
        "version": workflow.version,
        "recommendations": [r.id for r in recs],
        "baseline_seconds": baseline,
        "predicted_seconds": predicted,
    }
    return AdvancedWorkflow.from_dict(data, source=f"{workflow.workflow_id} (optimized)")
