"""The state models: enums, RetryPolicy, AdvancedWorkflow defaults and round trips, run state."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from state import (
    AdvancedWorkflow,
    EnterpriseWorkflowState,
    RetryPolicy,
    StepStatus,
    StepType,
    WorkflowDefinitionError,
    WorkflowStatus,
    WorkflowStep,
)


def test_enums_are_str_enums() -> None:
    """Statuses and step types compare equal to, and serialise as, plain strings."""
    assert WorkflowStatus.COMPLETED == "completed"
    assert StepStatus.SKIPPED == "skipped"
    assert StepType.HUMAN_APPROVAL == "human_approval"
    assert isinstance(WorkflowStatus.RUNNING, str)
    assert f"{WorkflowStatus.WAITING_APPROVAL}" == "waiting_approval"


def test_terminal_statuses() -> None:
    """Completed, failed, cancelled and timed_out are terminal; paused is not."""
    terminal = {s for s in WorkflowStatus if s.is_terminal}
    assert terminal == {"completed", "failed", "cancelled", "timed_out"}


def test_merged_with_overrides_only_explicit_fields() -> None:
    """A step override replaces only the fields it sets; the rest come from the base."""
    base = RetryPolicy(max_attempts=5, initial_delay=0.2, max_delay=4.0)
    merged = base.merged_with(RetryPolicy(parallel_failure_threshold=1.0))
    assert merged == RetryPolicy(
        max_attempts=5, initial_delay=0.2, max_delay=4.0, parallel_failure_threshold=1.0
    )


def test_merged_with_keeps_an_override_equal_to_the_default() -> None:
    """An explicit override wins even when its value equals the field's default."""
    base = RetryPolicy(max_attempts=5)
    assert base.merged_with(RetryPolicy(max_attempts=3)).max_attempts == 3


def test_merged_with_none_is_the_base() -> None:
    """No override leaves the base policy unchanged."""
    base = RetryPolicy(max_attempts=2)
    assert base.merged_with(None) is base


def test_retry_policy_rejects_max_delay_below_initial_delay() -> None:
    """`max_delay` smaller than `initial_delay` is refused with the way out."""
    with pytest.raises(ValidationError, match=r"max_delay \(1\.0\) is smaller than initial_delay"):
        RetryPolicy(initial_delay=2.0, max_delay=1.0)


def test_retry_policy_is_frozen() -> None:
    """A policy is an immutable value object."""
    policy = RetryPolicy()
    with pytest.raises(ValidationError, match="frozen"):
        policy.max_attempts = 9  # type: ignore[misc]


def _workflow(**fields: Any) -> AdvancedWorkflow:
    steps = fields.pop("steps", [{"step_id": "a", "action": "noop"}])
    return AdvancedWorkflow.from_dict({"name": "Order Intake: EU/2024", "steps": steps, **fields})


def test_workflow_id_defaults_to_a_slug_of_the_name() -> None:
    """Without a workflow_id, the id is the lower-case, dash-separated name."""
    assert _workflow().workflow_id == "order-intake-eu-2024"


def test_explicit_workflow_id_is_kept() -> None:
    """A given workflow_id is not replaced by the slug."""
    assert _workflow(workflow_id="intake").workflow_id == "intake"


@pytest.mark.parametrize(("given", "expected"), [(2, "2"), (1.5, "1.5"), ("3.0", "3.0")])
def test_version_becomes_a_string(given: object, expected: str) -> None:
    """A version given as a number is stored as text."""
    assert _workflow(version=given).version == expected


def test_workflow_accepts_built_steps() -> None:
    """Steps may be given as WorkflowStep objects as well as plain data."""
    wf = AdvancedWorkflow(
        name="Greet",
        steps=[
            WorkflowStep(step_id="hi", action="say"),
            WorkflowStep(step_id="bye", action="say", dependencies=["hi"]),
        ],
    )
    assert wf.step("bye").dependencies == ["hi"]


def test_effective_retry_merges_the_step_override() -> None:
    """A step's retry policy and continue_on_failure override the workflow's, field by field."""
    wf = _workflow(
        retry_policy={"max_attempts": 4, "initial_delay": 0.1, "max_delay": 1.0},
        steps=[
            {
                "step_id": "a",
                "action": "noop",
                "retry_policy": {"max_attempts": 1},
                "continue_on_failure": True,
            }
        ],
    )
    policy = wf.effective_retry(wf.step("a"))
    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (1, 0.1, 1.0)
    assert policy.continue_on_failure is True


def test_to_data_round_trips() -> None:
    """`from_dict(wf.to_data())` rebuilds an equal workflow."""
    wf = _workflow(
        description="d",
        tags=["eu"],
        created_at="2024-05-01T12:00:00Z",
        steps=[
            {"step_id": "a", "action": "noop", "input_mapping": {"x": "input.x"}},
            {
                "step_id": "route",
                "step_type": "conditional",
                "dependencies": ["a"],
                "conditions": [{"if": "context.x > 1", "then": ["b"]}, {"else": ["c"]}],
            },
            {"step_id": "b", "action": "noop"},
            {"step_id": "c", "action": "noop"},
        ],
    )
    wf.step("a")  # fills the cached index, which must not affect equality
    data = wf.to_data()
    assert AdvancedWorkflow.from_dict(data) == wf
    assert data["steps"][1]["conditions"] == [
        {"if": "context.x > 1", "then": ["b"]},
        {"else": ["c"]},
    ]


def test_to_data_keeps_a_step_retry_override_equal_to_the_default() -> None:
    """A step override whose value equals the default survives to_data (runs use to_data)."""
    wf = _workflow(
        retry_policy={"max_attempts": 5},
        steps=[{"step_id": "a", "action": "noop", "retry_policy": {"max_attempts": 3}}],
    )
    rebuilt = AdvancedWorkflow.from_dict(wf.to_data())
    assert rebuilt.effective_retry(rebuilt.step("a")).max_attempts == 3


def test_workflow_is_frozen() -> None:
    """A definition cannot be changed once built."""
    wf = _workflow()
    with pytest.raises(ValidationError, match="frozen"):
        wf.name = "other"  # type: ignore[misc]


def test_iter_steps_includes_nested_steps_depth_first() -> None:
    """iter_steps yields containers followed by their children."""
    wf = _workflow(
        steps=[
            {
                "step_id": "fan",
                "step_type": "parallel",
                "parallel_steps": [
                    {"step_id": "x", "action": "n"},
                    {"step_id": "y", "action": "n"},
                ],
            },
            {"step_id": "z", "action": "n"},
        ]
    )
    assert [s.step_id for s in wf.iter_steps()] == ["fan", "x", "y", "z"]
    assert wf.top_level_ids == ["fan", "z"]


def test_run_state_from_graph_input_starts_initializing() -> None:
    """The graph input `{workflow, context}` builds a state that is initializing and empty."""
    state = EnterpriseWorkflowState.model_validate(
        {"workflow": {"name": "W", "steps": []}, "context": {"applicant_id": "A-1"}}
    )
    assert state.status is WorkflowStatus.INITIALIZING
    assert state.context == {"applicant_id": "A-1"}
    assert state.workflow == {"name": "W", "steps": []}
    assert state.completed_steps == state.failed_steps == state.skipped_steps == []
    assert state.current_steps == state.compliance_flags == []
    assert state.intermediate_results == state.step_results == {}
    assert state.final_result is None
    assert state.error is None
    assert state.started_at is None


def test_run_state_serialises_status_as_a_plain_string() -> None:
    """A dumped run state holds the status as its string value."""
    dumped = EnterpriseWorkflowState(status=WorkflowStatus.PAUSED).model_dump(mode="json")
    assert dumped["status"] == "paused"
    assert type(dumped["status"]) is str


def test_a_definition_whose_field_name_is_not_text_is_refused() -> None:
    """A YAML `?` alone parses to `{None: None}`: a definition error naming it, not a crash."""
    with pytest.raises(WorkflowDefinitionError) as raised:
        AdvancedWorkflow.from_dict({None: None, "name": "x"})
    assert "field names must be text, got None" in str(raised.value)
