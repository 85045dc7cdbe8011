"""Adaptive planning: a planner model writes the workflow for a task.

`plan_workflow` shows the planner the registered actions and agents, asks for a workflow
with structured output, validates it as any definition is validated (and checks every name
against the registry), feeds the problems back for one repair round, and returns the
`AdvancedWorkflow`. With `approvers`, the plan starts with a `human_approval` step that every
other step waits for, so nobody's plan runs before a person agreed to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from nodes import ActionInvoker
from orchestrator._agent_check import check_agents
from policies import call_with_retry
from state import (
    ActionNotFoundError,
    AdvancedWorkflow,
    PlanError,
    RetryPolicy,
    WorkflowDefinitionError,
)

REVIEW_STEP = "review_plan"
"""Id of the approval step added in front of a plan that needs a human's approval."""


class PlannedStep(BaseModel):
    """One step of a generated workflow."""

    step_id: str = Field(description="Unique id: letters, digits, _ or -")
    step_type: Literal["sequential", "react"] = Field(
        default="sequential", description="sequential calls an action; react runs an agent"
    )
    action: str | None = Field(default=None, description="Registered action (sequential)")
    agent_capability: str | None = Field(default=None, description="Registered agent (react)")
    tools: list[str] = Field(default_factory=list, description="Tools a react step may use")
    prompt: str | None = Field(default=None, description="Instructions of a react step")
    dependencies: list[str] = Field(default_factory=list, description="Step ids to wait for")
    input_mapping: dict[str, str] = Field(
        default_factory=dict,
        description="{param: path} over input, context and results, e.g. results.search.text",
    )
    output_mapping: dict[str, str] = Field(
        default_factory=dict, description="{context_key: path} over the step's output"
    )


class PlannedWorkflow(BaseModel):
    """A workflow the planner proposes."""

    name: str = Field(description="Short name of the workflow")
    steps: list[PlannedStep] = Field(description="The steps, in any order")


@dataclass(frozen=True)
class Plan:
    """A generated workflow and how it came about."""

    workflow: AdvancedWorkflow
    """The validated workflow, ready to run."""
    repaired: bool
    """True when the first proposal was invalid and the repair round fixed it."""
    task: str
    """The task it was planned for."""


def catalog(actions: ActionInvoker) -> dict[str, str]:
    """`{name: one-line description}` of the registered actions and agents."""
    describe = getattr(actions, "describe", None)
    return dict(describe()) if describe is not None else {}


def _guide(actions: ActionInvoker, task: str, input_keys: Sequence[str]) -> list[BaseMessage]:
    listed = "\n".join(f"- {name}: {text}" for name, text in sorted(catalog(actions).items()))
    system = (
        "You plan workflows. Write a workflow whose steps use only these capabilities "
        "(actions for sequential steps, agents for react steps):\n"
        f"{listed}\n"
        "Map each step's parameters with paths such as input.<key> or results.<step_id>. "
        f"The run input has the keys: {', '.join(input_keys) or '(none)'}. Put the final "
        "answer into the context with output_mapping."
    )
    return [SystemMessage(system), HumanMessage(task)]


def _problems(
    proposal: Any, actions: ActionInvoker, actions_module: str | None
) -> tuple[AdvancedWorkflow | None, list[str]]:
    if isinstance(proposal, BaseModel):
        proposal = proposal.model_dump(exclude_none=True)
    if not isinstance(proposal, Mapping):
        return None, [f"the reply is not a workflow object: {proposal!r}"]
    data = dict(proposal)
    if actions_module:
        data["actions"] = actions_module
    try:
        workflow = AdvancedWorkflow.from_dict(data)
    except WorkflowDefinitionError as exc:
        return None, [str(p) for p in exc.problems]
    try:
        check_agents(workflow, actions)
    except ActionNotFoundError as exc:
        return None, [str(exc)]
    return workflow, []


async def plan_workflow(
    task: str,
    actions: ActionInvoker,
    *,
    planner: str,
    input_data: Mapping[str, Any] | None = None,
    approvers: Sequence[str] = (),
    actions_module: str | None = None,
    retry: RetryPolicy | None = None,
    sleep: Any = None,
) -> Plan:
    """Ask the `planner` model for a workflow doing `task`, validated, with one repair round."""
    model = actions.agent(planner)
    structured = model.with_structured_output(PlannedWorkflow, include_raw=True)
    messages = _guide(actions, task, sorted(input_data or {}))
    problems: list[str] = []
    options: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    for round_ in range(2):
        history = list(messages)

        async def ask(_attempt: int, history: list[BaseMessage] = history) -> Any:
            return await structured.ainvoke(history)

        result = await call_with_retry(ask, retry or RetryPolicy(), **options)
        parsed = result.get("parsed") if isinstance(result, Mapping) else result
        if parsed is None:
            problems = [f"the reply is not a workflow: {result.get('parsing_error')}"]
        else:
            workflow, problems = _problems(parsed, actions, actions_module)
            if workflow is not None:
                return Plan(_with_review(workflow, approvers, task), round_ > 0, task)
        messages.append(
            HumanMessage(
                "That workflow is invalid:\n- "
                + "\n- ".join(problems)
                + "\nReturn a corrected workflow."
            )
        )
    raise PlanError(
        f"planner '{planner}' gave an invalid workflow twice for task {task!r}: "
        f"{'; '.join(problems)}; register the capabilities it needs or describe the task "
        "more precisely"
    )


def _with_review(
    workflow: AdvancedWorkflow, approvers: Sequence[str], task: str
) -> AdvancedWorkflow:
    """The plan, behind a human approval step when `approvers` are given."""
    if not approvers:
        return workflow
    data = workflow.to_data()
    steps = [{**s, "dependencies": s.get("dependencies") or [REVIEW_STEP]} for s in data["steps"]]
    outline = ", ".join(s["step_id"] for s in data["steps"])
    review = {
        "step_id": REVIEW_STEP,
        "step_type": "human_approval",
        "approval": {
            "approvers": list(approvers),
            "summary": f"Generated plan for {task!r}: {outline}. Approve to run it.",
        },
    }
    return AdvancedWorkflow.from_dict({**data, "steps": [review, *steps]})


def plan_json(plan: Plan) -> dict[str, Any]:
    """What the audit trail keeps of a plan."""
    return json.loads(json.dumps(plan.workflow.to_data(), default=str))  # type: ignore[no-any-return]


__all__ = ["REVIEW_STEP", "Plan", "PlannedStep", "PlannedWorkflow", "plan_json", "plan_workflow"]
