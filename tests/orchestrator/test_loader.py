"""Loading definitions from YAML and JSON files, and the definition JSON Schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from orchestrator import load_workflow, workflow_schema
from state import AdvancedWorkflow, OnTimeout, StepType, WorkflowDefinitionError

COMPLETE_DEFINITION = (Path(__file__).parent / "fixtures" / "purchase_order.yaml").read_text(
    encoding="utf-8"
)


@pytest.fixture
def complete(tmp_path: Path) -> AdvancedWorkflow:
    """The complete definition of DESIGN.md, loaded from a real YAML file."""
    path = tmp_path / "purchase_order.yaml"
    path.write_text(COMPLETE_DEFINITION, encoding="utf-8")
    return load_workflow(path)


def test_complete_definition_loads(complete: AdvancedWorkflow) -> None:
    """The reference definition loads with its top-level fields and every step."""
    assert complete.name == "Purchase order"
    assert complete.workflow_id == "purchase-order"
    assert complete.version == "1.0"
    assert complete.actions == "procurement.actions"
    assert complete.timeout == 600
    assert complete.max_parallel_steps == 5
    assert complete.global_variables == {"supplier_api": "https://suppliers.example.com"}
    assert complete.top_level_ids == [
        "receive",
        "vet",
        "size",
        "manager",
        "self_service",
        "place",
        "draft",
        "confirm",
    ]
    assert complete.step("receive").step_type is StepType.SEQUENTIAL


def test_complete_definition_conditions_parse_if_and_else(complete: AdvancedWorkflow) -> None:
    """`if`/`then` and `else` rules parse into Condition objects in order."""
    first, last = complete.step("size").conditions
    assert first.if_ == "context.order.total >= 5000 and not context.order.preapproved"
    assert first.then == ["manager"]
    assert first.else_ is None
    assert last.if_ is None
    assert last.targets == ["self_service"]


def test_complete_definition_approval_config(complete: AdvancedWorkflow) -> None:
    """The approval sub-config carries approvers, quorum, deadline and escalation."""
    approval = complete.step("manager").approval
    assert approval is not None
    assert approval.approvers == ["dana", "lee", "kim"]
    assert approval.min_approvals == 2
    assert approval.timeout_seconds == 172800
    assert approval.on_timeout is OnTimeout.ESCALATE
    assert approval.escalate_to == ["cfo"]


def test_complete_definition_webhook_config(complete: AdvancedWorkflow) -> None:
    """The webhook sub-config, rollback point and compensation actions are kept."""
    place = complete.step("place")
    assert place.webhook is not None
    assert place.webhook.url == "{globals.supplier_api}/orders"
    assert place.webhook.method == "POST"
    assert place.webhook.timeout == 10
    assert place.rollback_point is True
    assert place.rollback_actions == ["cancel_supplier_order"]


def test_complete_definition_containers(complete: AdvancedWorkflow) -> None:
    """Parallel children and the loop body are nested steps reachable by id."""
    assert [s.step_id for s in complete.step("vet").parallel_steps] == ["budget", "vendor"]
    draft = complete.step("draft")
    assert draft.loop_condition == "context.clarity < 0.9"
    assert draft.loop_max_iterations == 3
    assert [s.step_id for s in draft.body] == ["rewrite"]
    assert complete.step("rewrite").output_mapping == {"clarity": "clarity", "letter": "text"}
    assert complete.step("budget").step_type is StepType.WORKER


def test_complete_definition_retry_override_merges_over_workflow_policy(
    complete: AdvancedWorkflow,
) -> None:
    """The parallel step's threshold override keeps the workflow's attempts and delays."""
    vet = complete.effective_retry(complete.step("vet"))
    assert vet.parallel_failure_threshold == 1.0
    assert (vet.max_attempts, vet.initial_delay, vet.max_delay) == (3, 0.1, 2.0)
    receive = complete.effective_retry(complete.step("receive"))
    assert receive.parallel_failure_threshold == 0.5
    assert receive == complete.retry_policy


def test_complete_definition_round_trips(complete: AdvancedWorkflow) -> None:
    """`from_dict(to_data())` rebuilds the loaded definition."""
    assert AdvancedWorkflow.from_dict(complete.to_data()) == complete


def test_json_definition_loads(tmp_path: Path) -> None:
    """A `.json` file is parsed as JSON and validated."""
    path = tmp_path / "flow.json"
    data = {"name": "J", "version": 2, "steps": [{"step_id": "a", "action": "noop"}]}
    path.write_text(json.dumps(data), encoding="utf-8")
    wf = load_workflow(str(path))
    assert (wf.workflow_id, wf.version, wf.top_level_ids) == ("j", "2", ["a"])


def test_json_round_trip_through_a_file(tmp_path: Path, complete: AdvancedWorkflow) -> None:
    """`to_data()` written as JSON loads back into an equal workflow."""
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(complete.to_data()), encoding="utf-8")
    assert load_workflow(path) == complete


def test_yaml_is_parsed_with_the_safe_loader(tmp_path: Path) -> None:
    """A python-object tag is refused as a definition error and never executed."""
    marker = tmp_path / "executed"
    path = tmp_path / "evil.yaml"
    path.write_text(
        f"name: !!python/object/apply:os.system ['touch {marker}']\n"
        "steps: [{step_id: a, action: noop}]\n",
        encoding="utf-8",
    )
    with pytest.raises(WorkflowDefinitionError, match=r"not valid YAML"):
        load_workflow(path)
    assert not marker.exists()


def test_unreadable_file_error_names_the_file(tmp_path: Path) -> None:
    """A missing file is a definition error that names the path."""
    path = tmp_path / "missing.yaml"
    with pytest.raises(WorkflowDefinitionError, match=rf"cannot read {re.escape(str(path))}"):
        load_workflow(path)


def test_directory_instead_of_file_is_a_definition_error(tmp_path: Path) -> None:
    """A path that is a directory is reported, not raised as an OSError."""
    with pytest.raises(WorkflowDefinitionError, match=r"cannot read"):
        load_workflow(tmp_path)


def test_invalid_yaml_error_names_the_file(tmp_path: Path) -> None:
    """Malformed YAML is a definition error naming the file."""
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nsteps: [unclosed\n", encoding="utf-8")
    with pytest.raises(
        WorkflowDefinitionError, match=rf"(?s)in {re.escape(str(path))} .*not valid YAML"
    ) as info:
        load_workflow(path)
    assert info.value.source == str(path)


def test_invalid_json_error_names_the_file(tmp_path: Path) -> None:
    """Malformed JSON is a definition error naming the file."""
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",', encoding="utf-8")
    with pytest.raises(
        WorkflowDefinitionError, match=rf"(?s)in {re.escape(str(path))} .*not valid JSON"
    ):
        load_workflow(path)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_non_mapping_document_is_refused(tmp_path: Path, text: str) -> None:
    """A file whose document is not a mapping is a definition error."""
    path = tmp_path / "flow.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorkflowDefinitionError, match=r"definition: expected a mapping"):
        load_workflow(path)


def test_validation_problems_name_the_file(tmp_path: Path) -> None:
    """Problems found in a loaded definition are reported with the file name."""
    path = tmp_path / "flow.yml"
    path.write_text(
        yaml.safe_dump(
            {"name": "Y", "steps": [{"step_id": "a", "action": "x", "dependencies": ["b"]}]}
        ),
        encoding="utf-8",
    )
    with pytest.raises(
        WorkflowDefinitionError, match=rf"in {re.escape(str(path))} \(1 problem\)"
    ) as info:
        load_workflow(path)
    assert info.value.problems[0].location == "steps[0] (a).dependencies"


def test_yaml_number_version_becomes_a_string(tmp_path: Path) -> None:
    """`version: 2` in YAML loads as the string "2"."""
    path = tmp_path / "flow.yaml"
    path.write_text("name: V\nversion: 2\nsteps: [{step_id: a, action: noop}]\n", encoding="utf-8")
    assert load_workflow(path).version == "2"


def test_schema_describes_the_top_level_fields() -> None:
    """The JSON Schema has the definition's top-level properties, steps and name required."""
    schema = workflow_schema()
    assert {"steps", "name", "retry_policy", "timeout"} <= schema["properties"].keys()
    assert {"steps", "name"} <= set(schema["required"])


def test_schema_uses_yaml_aliases_for_conditions() -> None:
    """The Condition definition spells its keys `if` and `else`, as YAML does."""
    condition = workflow_schema()["$defs"]["Condition"]["properties"]
    assert {"if", "then", "else"} <= condition.keys()
    assert "if_" not in condition
    assert "else_" not in condition


def test_schema_is_json_serialisable() -> None:
    """The schema can be printed as JSON (`orchestrator schema`)."""
    assert json.loads(json.dumps(workflow_schema()))["title"] == "AdvancedWorkflow"


def test_schema_documents_the_agent_fields() -> None:
    """`orchestrator schema` describes the agent fields with their docstrings."""
    defs = workflow_schema()["$defs"]
    step = defs["WorkflowStep"]["properties"]
    for field in ("for_each", "max_subtasks", "workers", "reduce", "router", "on_limit"):
        assert step[field].get("description"), field
    assert "tokens" in defs["SlaTargets"]["properties"]["max_tokens"]["description"]
    assert "step_id" in defs["RouterConfig"]["properties"]["routes"]["description"]
