"""Property-based fuzzing: definitions and inputs fail only with our errors, and never hang;
random valid DAGs run each step once, in dependency order, skipping exactly what they should."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator, load_workflow
from orchestrator._cli import parse_input
from policies import Limits, check_value
from state import AdvancedWorkflow, InvalidInputError, WorkflowDefinitionError, WorkflowStatus

FIELDS = [
    "step_id", "name", "step_type", "action", "timeout", "dependencies", "conditions",
    "input_mapping", "output_mapping", "retry_policy", "parallel_steps", "body",
    "loop_condition", "loop_max_iterations", "approval", "webhook", "isolation",
    "error_handlers", "rollback_actions", "next_steps", "input_validation",
]  # fmt: skip
TYPES = ["sequential", "parallel", "conditional", "loop", "human_approval", "webhook",
         "worker", "react", "rollback", "orchestrator", "bogus"]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["a", "b", "c", "x > 1", "input.x", "@", "{globals.u}", *TYPES]),
)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
step = st.fixed_dictionaries(
    {"step_id": st.sampled_from(["a", "b", "c", "d"]) | st.text(max_size=6)},
    optional={name: json_like | st.sampled_from(TYPES) for name in FIELDS[1:]},
)
definitions = st.fixed_dictionaries(
    {"name": st.text(max_size=8) | st.integers()},
    optional={
        "steps": st.lists(step, max_size=4) | json_like,
        "timeout": json_like,
        "max_parallel_steps": json_like,
        "global_variables": json_like,
        "retry_policy": json_like,
        "version": json_like,
    },
)

FUZZ = settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(definitions | json_like)
def test_definition_dicts_fail_only_with_definition_errors(data: Any) -> None:
    """Any dict (or value) is a valid workflow or a WorkflowDefinitionError, nothing else."""
    try:
        workflow = AdvancedWorkflow.from_dict(data)
    except WorkflowDefinitionError as exc:
        problems = exc.problems
    else:
        assert AdvancedWorkflow.from_dict(workflow.to_data()) == workflow
        return
    assert problems


yaml_text = st.text(alphabet=string.printable, max_size=200) | st.builds(
    lambda d: json.dumps(d, default=str), definitions
)


@FUZZ
@given(yaml_text, st.booleans())
@example(text="?", as_json=False)  # found by CI: a YAML key of None (`?` alone)
def test_definition_files_fail_only_with_definition_errors(
    tmp_path_factory: Any, text: str, as_json: bool
) -> None:
    """Any file text loads or raises WorkflowDefinitionError (YAML and JSON)."""
    path = Path(tmp_path_factory.mktemp("fuzz")) / ("wf.json" if as_json else "wf.yaml")
    path.write_text(text, encoding="utf-8")
    problems = []
    try:
        load_workflow(path)
    except WorkflowDefinitionError as exc:
        problems = exc.problems
        assert problems


@FUZZ
@given(json_like)
def test_inputs_fail_only_with_invalid_input(value: Any) -> None:
    """Any input value is accepted or refused with InvalidInputError."""
    message = "input"
    try:
        check_value(value, Limits(max_input_bytes=2000), what="input")
    except InvalidInputError as exc:
        message = str(exc)
    assert "input" in message


@FUZZ
@given(st.text(max_size=300) | st.builds(json.dumps, json_like))
def test_cli_input_text_fails_only_with_invalid_input(text: str) -> None:
    """Any --input text parses to a dict or raises InvalidInputError."""
    message = "--input"
    try:
        assert isinstance(parse_input(text), dict)
    except InvalidInputError as exc:
        message = str(exc)
    assert "--input" in message


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    """A random DAG of 2-7 steps with, sometimes, a conditional routing to one of two steps."""
    count = draw(st.integers(2, 7))
    steps: list[dict[str, Any]] = []
    for i in range(count):
        deps = (
            draw(st.lists(st.sampled_from([f"s{j}" for j in range(i)]), unique=True)) if i else []
        )
        steps.append({"step_id": f"s{i}", "action": "rec", "dependencies": deps})
    if draw(st.booleans()):
        go = draw(st.booleans())
        steps.append(
            {
                "step_id": "route",
                "step_type": "conditional",
                "dependencies": [f"s{count - 1}"],
                "conditions": [{"if": f"{'1 == 1' if go else '1 == 2'}", "then": ["yes"]},
                               {"else": ["no"]}],
            }
        )  # fmt: skip
        steps.append({"step_id": "yes", "action": "rec"})
        steps.append({"step_id": "no", "action": "rec"})
        tail = draw(st.sampled_from(["yes", "no"]))
        steps.append({"step_id": "after", "action": "rec", "dependencies": [tail]})
    return {"name": "dag", "max_parallel_steps": 3, "steps": steps}


def _expected_skips(definition: dict[str, Any]) -> set[str]:
    steps = {s["step_id"]: s for s in definition["steps"]}
    if "route" not in steps:
        return set()
    taken = "yes" if "1 == 1" in steps["route"]["conditions"][0]["if"] else "no"
    skipped = {"no" if taken == "yes" else "yes"}
    if steps["after"]["dependencies"] == sorted(skipped):
        skipped.add("after")
    return skipped


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
async def test_random_dags_run_each_step_once_in_order(definition: dict[str, Any]) -> None:
    """Every step runs once, after all its dependencies; exactly the untaken branch is skipped."""
    order: list[str] = []
    registry = ActionRegistry()

    @registry.action("rec")
    async def rec(ctx: Any) -> None:
        order.append(ctx.step_id)

    async with EnterpriseWorkflowOrchestrator(registry=registry, checkpointer="memory") as orch:
        run = await orch.execute_workflow(AdvancedWorkflow.from_dict(definition))
    assert run.status is WorkflowStatus.COMPLETED
    skipped = _expected_skips(definition)
    assert set(run.skipped_steps) == skipped
    actions = {s["step_id"] for s in definition["steps"] if s.get("action")}
    assert sorted(order) == sorted(actions - skipped)  # each once
    position = {sid: i for i, sid in enumerate(order)}
    for s in definition["steps"]:
        for dep in s.get("dependencies", []):
            if s["step_id"] in position and dep in position:
                assert position[dep] < position[s["step_id"]]
