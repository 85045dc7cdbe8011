"""Definition validation: every rule, locations, suggestions, and all problems reported at once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state import (
    AdvancedWorkflow,
    DefinitionProblem,
    OrchestratorError,
    StepType,
    WorkflowDefinitionError,
)


def step(step_id: str, **fields: Any) -> dict[str, Any]:
    """A raw sequential step that calls a (hypothetical) action."""
    return {"step_id": step_id, "action": "noop", **fields}


def definition(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A raw workflow definition around `steps`."""
    return {"name": "Test", "steps": list(steps), **fields}


def conditional(step_id: str, *rules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A raw conditional step with these routing rules."""
    return {"step_id": step_id, "step_type": "conditional", "conditions": list(rules), **fields}


def loop(step_id: str, condition: str = "context.n < 3", **fields: Any) -> dict[str, Any]:
    """A raw loop step whose body is one action step."""
    fields.setdefault("body", [step(f"{step_id}_body")])
    return {"step_id": step_id, "step_type": "loop", "loop_condition": condition, **fields}


def refused(data: dict[str, Any], pattern: str) -> list[DefinitionProblem]:
    """Build `data`, expect a WorkflowDefinitionError matching `pattern`, return its problems."""
    with pytest.raises(WorkflowDefinitionError, match=pattern) as info:
        AdvancedWorkflow.from_dict(data)
    return info.value.problems


def at(problems: list[DefinitionProblem], location: str) -> list[str]:
    """Messages of the problems found at exactly `location`."""
    return [p.message for p in problems if p.location == location]


def test_valid_definition_builds() -> None:
    """A well-formed definition builds without problems."""
    wf = AdvancedWorkflow.from_dict(definition(step("a"), step("b", dependencies=["a"])))
    assert wf.top_level_ids == ["a", "b"]


def test_definition_error_is_a_value_error_and_an_orchestrator_error() -> None:
    """WorkflowDefinitionError can be caught as ValueError or as OrchestratorError."""
    assert issubclass(WorkflowDefinitionError, ValueError)
    assert issubclass(WorkflowDefinitionError, OrchestratorError)


def test_problem_location_names_index_id_and_field() -> None:
    """A problem's location reads `steps[2] (charge).dependencies`."""
    problems = refused(
        definition(step("receive"), step("authorize"), step("charge", dependencies=["nope"])),
        r"steps\[2\] \(charge\)\.dependencies: ",
    )
    assert [p.location for p in problems] == ["steps[2] (charge).dependencies"]


def test_workflow_without_steps_is_refused() -> None:
    """An empty step list is a problem."""
    refused(definition(), r"steps: a workflow needs at least one step")


def test_duplicate_top_level_ids_are_refused() -> None:
    """Two top-level steps with the same id are reported at the second one."""
    problems = refused(
        definition(step("a"), step("a")),
        r"duplicate step id 'a' \(first used at steps\[0\] \(a\)\)",
    )
    assert at(problems, "steps[1] (a).step_id")


def test_duplicate_ids_inside_a_parallel_container_are_refused() -> None:
    """Two children of one parallel container may not share an id."""
    container = {
        "step_id": "fan",
        "step_type": "parallel",
        "parallel_steps": [step("x"), step("x")],
    }
    problems = refused(definition(container), r"duplicate step id 'x'")
    assert at(problems, "steps[0] (fan).parallel_steps[1] (x).step_id")


def test_parallel_child_reusing_a_top_level_id_is_refused() -> None:
    """Ids are unique across the workflow, so a child may not reuse a top-level id."""
    container = {"step_id": "fan", "step_type": "parallel", "parallel_steps": [step("a")]}
    problems = refused(definition(step("a"), container), r"duplicate step id 'a'")
    assert at(problems, "steps[1] (fan).parallel_steps[0] (a).step_id")


def test_duplicate_ids_inside_a_loop_body_are_refused() -> None:
    """Two steps of one loop body may not share an id."""
    problems = refused(
        definition(loop("draft", body=[step("rewrite"), step("rewrite")])),
        r"duplicate step id 'rewrite'",
    )
    assert at(problems, "steps[0] (draft).body[1] (rewrite).step_id")


def test_loop_body_reusing_its_own_loop_id_is_refused() -> None:
    """A body step may not reuse the id of the loop that contains it."""
    refused(definition(loop("draft", body=[step("draft")])), r"duplicate step id 'draft'")


_AUTHORIZE = step("authorize")
_UNKNOWN_REFERENCES = {
    "dependencies": (step("charge", dependencies=["autorize"]), "steps[1] (charge).dependencies"),
    "conditional branch": (
        conditional("route", {"if": "context.ok", "then": ["autorize"]}),
        "steps[1] (route).conditions[0]",
    ),
    "else branch": (
        conditional("route", {"if": "context.ok", "then": ["authorize"]}, {"else": ["autorize"]}),
        "steps[1] (route).conditions[1]",
    ),
    "next_steps": (step("charge", next_steps=["autorize"]), "steps[1] (charge).next_steps"),
    "error_handlers": (
        step("charge", error_handlers=["autorize"]),
        "steps[1] (charge).error_handlers",
    ),
    "approval.on_reject": (
        {
            "step_id": "review",
            "step_type": "human_approval",
            "approval": {"approvers": ["dana"], "on_reject": "autorize"},
        },
        "steps[1] (review).approval.on_reject",
    ),
}


@pytest.mark.parametrize(
    ("referrer", "location"), _UNKNOWN_REFERENCES.values(), ids=_UNKNOWN_REFERENCES.keys()
)
def test_unknown_step_reference_is_refused_with_a_suggestion(
    referrer: dict[str, Any], location: str
) -> None:
    """A reference to an unknown step is located and suggests the closest existing id."""
    problems = refused(
        definition(_AUTHORIZE, referrer),
        r"unknown step 'autorize' \(did you mean 'authorize'\?\)",
    )
    assert len(at(problems, location)) == 1


def test_unknown_reference_without_a_close_match_has_no_suggestion() -> None:
    """When no id is close, the message names the unknown id without a guess."""
    problems = refused(
        definition(step("authorize"), step("charge", dependencies=["zzz"])),
        r"depends on unknown step 'zzz'",
    )
    assert "did you mean" not in problems[0].message


def test_nested_steps_may_not_declare_dependencies() -> None:
    """Children run by their container, so a dependency on a child is refused."""
    container = {
        "step_id": "fan",
        "step_type": "parallel",
        "parallel_steps": [step("x", dependencies=["a"])],
    }
    refused(definition(step("a"), container), r"nested steps .* cannot declare dependencies")


def test_self_dependency_is_refused() -> None:
    """A step may not depend on itself."""
    refused(definition(step("a", dependencies=["a"])), r"step 'a' depends on itself")


def test_two_step_cycle_is_named() -> None:
    """A dependency cycle of two steps is reported as `a -> b -> a`."""
    problems = refused(
        definition(step("a", dependencies=["b"]), step("b", dependencies=["a"])),
        r"dependency cycle: a -> b -> a",
    )
    assert len([p for p in problems if "dependency cycle" in p.message]) == 1


def test_three_step_cycle_is_named() -> None:
    """A dependency cycle of three steps names every step in order."""
    refused(
        definition(
            step("a", dependencies=["b"]),
            step("b", dependencies=["c"]),
            step("c", dependencies=["a"]),
            step("d", dependencies=["a"]),
        ),
        r"dependency cycle: a -> b -> c -> a;",
    )


def test_conditional_routing_to_its_own_dependency_is_a_cycle() -> None:
    """A conditional's targets implicitly depend on it, so routing back upstream is a cycle."""
    refused(
        definition(
            step("a"),
            conditional("route", {"if": "context.ok", "then": ["a"]}, dependencies=["a"]),
        ),
        r"dependency cycle: a -> route -> a",
    )


_BAD_EXPRESSIONS = {
    "syntax error": ("context.total >", r"syntax error in `context\.total >`"),
    "import": ("__import__('os')", r"only these functions may be called"),
    "dunder attribute": ("context.__class__", r"attribute `__class__` is not allowed"),
    "lambda": ("lambda: 1", r"`Lambda` is not allowed"),
    "builtin call": ("open('/etc/passwd')", r"only these functions may be called"),
    "method call": ("context.items.pop()", r"only these functions may be called"),
    "unknown root": ("os.environ", r"unknown name `os`"),
}


@pytest.mark.parametrize(
    ("expression", "pattern"), _BAD_EXPRESSIONS.values(), ids=_BAD_EXPRESSIONS.keys()
)
def test_bad_condition_expression_is_refused(expression: str, pattern: str) -> None:
    """An invalid or unsafe `if` expression is reported at its condition."""
    problems = refused(
        definition(step("a"), conditional("route", {"if": expression, "then": ["a"]})), pattern
    )
    assert at(problems, "steps[1] (route).conditions[0].if")


@pytest.mark.parametrize(
    ("expression", "pattern"), _BAD_EXPRESSIONS.values(), ids=_BAD_EXPRESSIONS.keys()
)
def test_bad_loop_condition_is_refused(expression: str, pattern: str) -> None:
    """An invalid or unsafe `loop_condition` is reported at the loop."""
    problems = refused(definition(loop("draft", expression)), pattern)
    assert at(problems, "steps[0] (draft).loop_condition")


def test_allowed_functions_and_operators_validate() -> None:
    """Comparisons, boolean operators and allowed functions are accepted."""
    expression = "len(context.items) > 2 and lower(context.name) in ['a', 'b'] or not input.x"
    AdvancedWorkflow.from_dict(
        definition(step("a"), conditional("route", {"if": expression, "then": ["a"]}))
    )


def test_loop_without_condition_is_refused() -> None:
    """A loop needs a `loop_condition`."""
    body_loop = {"step_id": "draft", "step_type": "loop", "body": [step("rewrite")]}
    refused(definition(body_loop), r"loop step 'draft' needs a `loop_condition`")


@pytest.mark.parametrize("timeout", [0, -1.5])
def test_non_positive_step_timeout_is_refused(timeout: float) -> None:
    """A step timeout must be greater than zero."""
    refused(definition(step("a", timeout=timeout)), r"steps\[0\] \(a\)\.timeout: .*greater than 0")


@pytest.mark.parametrize("timeout", [0, -30])
def test_non_positive_workflow_timeout_is_refused(timeout: float) -> None:
    """A workflow timeout must be greater than zero."""
    refused(definition(step("a"), timeout=timeout), r"(?m)^  - timeout: .*greater than 0")


def test_non_positive_webhook_timeout_is_refused() -> None:
    """A webhook request timeout must be greater than zero."""
    hook = {"step_id": "hook", "step_type": "webhook", "webhook": {"url": "http://x", "timeout": 0}}
    refused(definition(hook), r"steps\[0\] \(hook\)\.webhook\.timeout: .*greater than 0")


@pytest.mark.parametrize(
    ("iterations", "bound"),
    [(0, r"greater than or equal to 1"), (10_001, r"less than or equal to 10000")],
)
def test_loop_max_iterations_out_of_range_is_refused(iterations: int, bound: str) -> None:
    """`loop_max_iterations` must lie in 1..10000."""
    refused(
        definition(loop("draft", loop_max_iterations=iterations)),
        rf"steps\[0\] \(draft\)\.loop_max_iterations: .*{bound}",
    )


def test_loop_max_iterations_at_the_bounds_is_accepted() -> None:
    """1 and 10000 iterations are both allowed."""
    AdvancedWorkflow.from_dict(
        definition(loop("a", loop_max_iterations=1), loop("b", loop_max_iterations=10_000))
    )


def test_parallel_without_children_is_refused() -> None:
    """A parallel container needs `parallel_steps`."""
    refused(
        definition({"step_id": "fan", "step_type": "parallel"}),
        r"steps\[0\] \(fan\)\.parallel_steps: parallel step 'fan' has no `parallel_steps`",
    )


def test_loop_without_body_is_refused() -> None:
    """A loop needs a `body`."""
    refused(
        definition(loop("draft", body=[])),
        r"steps\[0\] \(draft\)\.body: loop step 'draft' has no `body`",
    )


def test_unknown_step_type_lists_the_valid_types() -> None:
    """An unknown step type is reported once, with every valid type named."""
    with pytest.raises(WorkflowDefinitionError, match=r"unknown step type 'paralel'") as info:
        AdvancedWorkflow.from_dict(definition({"step_id": "a", "step_type": "paralel"}))
    [problem] = info.value.problems
    assert problem.location == "steps[0] (a).step_type"
    assert all(t.value in problem.message for t in StepType)


def test_unknown_step_field_is_refused() -> None:
    """A misspelt step field is refused rather than ignored."""
    problems = refused(
        definition(step("a"), step("b", dependecies=["a"])),
        r"steps\[1\] \(b\)\.dependecies: unknown field",
    )
    assert len(problems) == 1


def test_unknown_workflow_field_is_refused() -> None:
    """A misspelt top-level field is refused rather than ignored."""
    refused(definition(step("a"), timout=30), r"timout: unknown field")


def test_unknown_field_in_a_sub_config_is_refused() -> None:
    """A misspelt field inside a webhook config is refused."""
    hook = {
        "step_id": "hook",
        "step_type": "webhook",
        "webhook": {"url": "http://x", "metod": "GET"},
    }
    refused(definition(hook), r"steps\[0\] \(hook\)\.webhook\.metod: unknown field")


def test_else_must_be_the_last_condition() -> None:
    """An `else` rule followed by another rule is refused."""
    problems = refused(
        definition(
            step("a"),
            step("b"),
            conditional("route", {"else": ["a"]}, {"if": "context.ok", "then": ["b"]}),
        ),
        r"`else` must be the last condition",
    )
    assert at(problems, "steps[2] (route).conditions[0]")


def test_condition_with_both_if_and_else_is_refused() -> None:
    """A single rule may not carry both `if` and `else`."""
    refused(
        definition(step("a"), conditional("route", {"if": "true", "then": ["a"], "else": ["a"]})),
        r"either `if` \(with `then`\) or `else`",
    )


def test_conditional_without_conditions_is_refused() -> None:
    """A conditional step needs at least one rule."""
    refused(definition(conditional("route")), r"conditional step 'route' has no `conditions`")


@pytest.mark.parametrize("step_type", ["sequential", "worker", "orchestrator"])
def test_action_step_without_action_is_refused(step_type: str) -> None:
    """Steps that call an action must name one."""
    refused(
        definition({"step_id": "a", "step_type": step_type}),
        rf"steps\[0\] \(a\)\.action: {step_type} step 'a' needs an `action`",
    )


def test_webhook_without_config_is_refused() -> None:
    """A webhook step needs a `webhook` config."""
    refused(
        definition({"step_id": "hook", "step_type": "webhook"}),
        r"steps\[0\] \(hook\)\.webhook: webhook step 'hook' needs `webhook: \{url: \.\.\.\}`",
    )


def test_human_approval_without_config_is_refused() -> None:
    """A human_approval step needs an `approval` config."""
    refused(
        definition({"step_id": "review", "step_type": "human_approval"}),
        r"steps\[0\] \(review\)\.approval: human_approval step 'review' needs `approval",
    )


def test_more_approvals_than_approvers_is_refused() -> None:
    """`min_approvals` may not exceed the number of distinct approvers."""
    review = {
        "step_id": "review",
        "step_type": "human_approval",
        "approval": {"approvers": ["dana", "lee", "dana"], "min_approvals": 3},
    }
    refused(
        definition(review),
        r"steps\[0\] \(review\)\.approval: .*min_approvals is 3 but only 2 distinct approvers",
    )


def test_invalid_jmespath_in_input_mapping_is_refused() -> None:
    """An input mapping path that is not valid JMESPath is reported at its key."""
    refused(
        definition(step("a", input_mapping={"order": "context.order[bad"})),
        r"steps\[0\] \(a\)\.input_mapping\.order: invalid path `context\.order\[bad`",
    )


def test_every_problem_is_reported_at_once() -> None:
    """A definition with many problems raises one error that lists all of them."""
    data = definition(
        step("receive", timeout=0, colour="red"),
        step("receive"),
        step("charge", dependencies=["recieve"], input_mapping={"x": "a[b"}),
        step("a", dependencies=["b"]),
        step("b", dependencies=["a"]),
        conditional("route", {"else": ["a"]}, {"if": "__import__('os')", "then": ["b"]}),
        {"step_id": "fan", "step_type": "parallel"},
        {"step_id": "odd", "step_type": "bogus"},
        {"step_id": "hook", "step_type": "webhook"},
        loop("draft", "context.", loop_max_iterations=0),
        timeout=-1,
    )
    with pytest.raises(WorkflowDefinitionError, match=r"\(14 problems\)") as info:
        AdvancedWorkflow.from_dict(data)
    found = {p.location: p.message for p in info.value.problems}
    expected = {
        "timeout": "greater than 0",
        "steps[0] (receive).timeout": "greater than 0",
        "steps[0] (receive).colour": "unknown field",
        "steps[1] (receive).step_id": "duplicate step id 'receive'",
        "steps[2] (charge).dependencies": "did you mean 'receive'",
        "steps[2] (charge).input_mapping.x": "invalid path",
        "steps[5] (route).conditions[0]": "`else` must be the last condition",
        "steps[5] (route).conditions[1].if": "only these functions may be called",
        "steps[6] (fan).parallel_steps": "has no `parallel_steps`",
        "steps[7] (odd).step_type": "unknown step type 'bogus'",
        "steps[8] (hook).webhook": "needs `webhook",
        "steps[9] (draft).loop_max_iterations": "greater than or equal to 1",
        "steps[9] (draft).loop_condition": "syntax error",
    }
    for location, fragment in expected.items():
        assert fragment in found.get(location, ""), location
    assert any(p.message.startswith("dependency cycle: a -> b -> a") for p in info.value.problems)


@st.composite
def dags(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Raw steps s0..sn-1 whose dependencies point only at earlier steps."""
    count = draw(st.integers(min_value=1, max_value=12))
    steps = []
    for index in range(count):
        deps = draw(st.sets(st.integers(min_value=0, max_value=index - 1))) if index else set()
        steps.append(step(f"s{index}", dependencies=[f"s{d}" for d in sorted(deps)]))
    return steps


def _reaches(steps: list[dict[str, Any]], start: int, goal: int) -> bool:
    """Whether step `start` depends, directly or transitively, on step `goal`."""
    deps = {s["step_id"]: s["dependencies"] for s in steps}
    stack, seen = [f"s{start}"], set()
    while stack:
        node = stack.pop()
        if node == f"s{goal}":
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(deps[node])
    return False


def _problems_or_none(data: dict[str, Any]) -> list[DefinitionProblem] | None:
    """The problems of `data`, or None when it builds; any other exception propagates."""
    try:
        AdvancedWorkflow.from_dict(data)
    except WorkflowDefinitionError as exc:
        return exc.problems
    return None


_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(dags())
def test_random_dags_validate(steps: list[dict[str, Any]]) -> None:
    """Any definition whose dependencies point only backwards is valid."""
    wf = AdvancedWorkflow.from_dict(definition(*steps))
    assert len(wf.steps) == len(steps)


@_FAST
@given(dags(), st.data())
def test_back_edge_in_a_dag_is_reported_as_a_cycle(
    steps: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Making an upstream step depend on one of its dependants is reported as a cycle."""
    if len(steps) < 2:
        steps.append(step("s1", dependencies=["s0"]))
    late = data.draw(st.integers(min_value=1, max_value=len(steps) - 1))
    early = data.draw(st.integers(min_value=0, max_value=late - 1))
    if not _reaches(steps, late, early):
        steps[late]["dependencies"].append(f"s{early}")
    steps[early]["dependencies"].append(f"s{late}")
    with pytest.raises(WorkflowDefinitionError, match="dependency cycle") as info:
        AdvancedWorkflow.from_dict(definition(*steps))
    cycles = [p.message for p in info.value.problems if "dependency cycle" in p.message]
    assert cycles
    assert all(re.search(r"\bs\d+ -> s\d+", c) for c in cycles)


_EXPRESSION_CHARS = "context.input_ab0123()[]{}'\"<>=!+-*/%:,@#\\ \n\x00andornotlambdaif"


@_FAST
@given(st.one_of(st.text(max_size=80), st.text(alphabet=_EXPRESSION_CHARS, max_size=40)))
def test_random_condition_text_validates_or_is_a_definition_problem(text: str) -> None:
    """Arbitrary text as a condition either validates or is reported as a problem, never crashes."""
    data = definition(step("a"), conditional("route", {"if": text, "then": ["a"]}))
    problems = _problems_or_none(data)
    if problems is not None:
        assert problems
        assert all(p.location.startswith("steps[1] (route).conditions[0]") for p in problems)


@_FAST
@given(
    st.recursive(
        st.sampled_from(["context.a", "input.b", "1", "'x'", "None", "len(context.c)"]),
        lambda inner: st.builds(
            "{} {} {}".format,
            inner,
            st.sampled_from(["and", "or", "==", "<", "+", "in"]),
            inner,
        ),
        max_leaves=8,
    )
)
def test_generated_safe_expressions_validate(expression: str) -> None:
    """Expressions built only from allowed names, operators and functions validate."""
    AdvancedWorkflow.from_dict(
        definition(step("a"), conditional("route", {"if": expression, "then": ["a"]}))
    )


def test_python_built_conditional_with_else_is_valid() -> None:
    """A conditional built from WorkflowStep objects (with `else` last) validates."""
    from state import WorkflowStep

    wf = AdvancedWorkflow(
        name="py",
        steps=[
            WorkflowStep(
                step_id="r",
                step_type="conditional",
                conditions=[{"if": "input.x > 1", "then": ["a"]}, {"else": ["b"]}],
            ),
            WorkflowStep(step_id="a", action="f"),
            WorkflowStep(step_id="b", action="f"),
        ],
    )
    assert [rule.targets for rule in wf.step("r").conditions] == [["a"], ["b"]]


def test_router_routes_must_name_known_steps() -> None:
    """A router route to an unknown step is a definition problem, with a suggestion."""
    with pytest.raises(
        WorkflowDefinitionError, match=r"router of 'r' routes to unknown step 'refnd'"
    ):
        AdvancedWorkflow.from_dict(
            {
                "name": "w",
                "steps": [
                    {
                        "step_id": "r",
                        "step_type": "conditional",
                        "router": {"capability": "m", "routes": {"refnd": "money back"}},
                    },
                    {"step_id": "refund", "action": "a"},
                ],
            }
        )


def test_for_each_and_reduce_belong_to_fan_out_steps() -> None:
    """`for_each` on a react step and `reduce` without a fan-out are refused, both reported."""
    with pytest.raises(WorkflowDefinitionError) as caught:
        AdvancedWorkflow.from_dict(
            {
                "name": "w",
                "steps": [
                    {
                        "step_id": "a",
                        "step_type": "react",
                        "agent_capability": "m",
                        "for_each": "input.x",
                    },
                    {"step_id": "b", "action": "x", "reduce": "merge"},
                ],
            }
        )
    text = str(caught.value)
    assert "`for_each` needs an action-like step" in text
    assert "`reduce` belongs to an orchestrator step" in text
