"""`WorkflowOptimizer.apply`: a new validated definition, version bumped, original untouched."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import WorkflowOptimizer
from orchestrator.optimizer import Level, OptimizationRecommendation, RecommendationType
from orchestrator.optimizer._apply import bump_version
from state import AdvancedWorkflow, InvalidInputError, WorkflowDefinitionError

WF = AdvancedWorkflow.from_dict(
    {
        "name": "w",
        "steps": [
            {"step_id": "a", "action": "x", "timeout": 300},
            {"step_id": "b", "action": "x", "dependencies": ["a"]},
            {"step_id": "p", "step_type": "parallel", "dependencies": ["b"],
             "parallel_steps": [{"step_id": "kid", "action": "x"}]},
        ],
    }
)  # fmt: skip
OPT = WorkflowOptimizer(checkpointer="memory")


def _rec(*changes: dict[str, Any], workflow: str = "w", **evidence: Any) -> Any:
    return OptimizationRecommendation(
        id=f"resources:{workflow}:*",
        type=RecommendationType.RESOURCES,
        description="test",
        expected_improvement=0.0,
        effort=Level.LOW,
        risk=Level.LOW,
        priority=7,
        workflow_id=workflow,
        specific_changes=list(changes),
        evidence=evidence,
    )


def _set(step: str | None, field: str, to: Any) -> dict[str, Any]:
    return {"op": "set", "step_id": step, "field": field, "from": None, "to": to}


def test_apply_returns_a_new_validated_definition() -> None:
    """Changes land on a copy with a bumped version and its provenance; WF is unchanged."""
    faster = OPT.apply(
        WF,
        [
            _rec(
                _set("b", "dependencies", []),
                _set("a", "timeout", 6.0),
                _set("kid", "cacheable", True),
                _set("a", "retry_policy.max_attempts", 2),
                _set(None, "max_parallel_steps", 2),
                predicted_seconds=1.5,
                baseline_seconds=3.0,
            )
        ],
    )
    assert (faster.version, WF.version) == ("1.1", "1.0")
    assert faster.step("b").dependencies == []
    assert WF.step("b").dependencies == ["a"]
    assert (faster.step("a").timeout, faster.step("kid").cacheable) == (6.0, True)
    assert faster.effective_retry(faster.step("a")).max_attempts == 2
    assert faster.max_parallel_steps == 2
    assert faster.optimized_from is not None
    assert faster.optimized_from.model_dump() == {
        "version": "1.0",
        "recommendations": ["resources:w:*"],
        "baseline_seconds": 3.0,
        "predicted_seconds": 1.5,
    }


def test_a_change_that_breaks_the_definition_is_refused() -> None:
    """The result is validated: a dependency on a missing step names the problem."""
    with pytest.raises(WorkflowDefinitionError, match="unknown step 'ghost'"):
        OPT.apply(WF, [_rec(_set("b", "dependencies", ["ghost"]))])


def test_recommendations_for_another_workflow_are_refused() -> None:
    """Applying advice made for another workflow is an error naming both."""
    with pytest.raises(InvalidInputError, match="is for workflow 'other', not 'w'"):
        OPT.apply(WF, [_rec(_set("a", "timeout", 5.0), workflow="other")])


def test_a_change_to_a_missing_step_says_to_recommend_again() -> None:
    """A step the version does not have (renamed since) is named with the way out."""
    with pytest.raises(InvalidInputError, match="recommend again for this version"):
        OPT.apply(WF, [_rec(_set("gone", "timeout", 5.0))])


def test_advice_only_recommendations_change_nothing_but_the_version() -> None:
    """Recommendations without changes are skipped."""
    faster = OPT.apply(WF, [_rec()])
    assert faster.version == "1.1"
    assert faster.optimized_from is not None
    assert faster.optimized_from.recommendations == []
    assert [s.model_dump() for s in faster.steps] == [s.model_dump() for s in WF.steps]


@pytest.mark.parametrize(
    ("old", "new"), [("1.0", "1.1"), ("2", "3"), ("v1.9", "v1.10"), ("beta", "beta.1")]
)
def test_bump_version(old: str, new: str) -> None:
    """The last number goes up by one; a version without one gets `.1`."""
    assert bump_version(old) == new
