"""Checking a workflow's actions, agents and tools against a registry before it runs.

A step names work by string; this finds, before anything runs, every name nobody registered
and every registered thing that does not fit the step naming it (a react step needs a chat
model or a compiled agent graph; LLM routing and model planners need a chat model), and every
model string whose provider package is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nodes import ActionInvoker
from nodes._agents import AgentKind
from state import (
    ActionNotFoundError,
    AdvancedWorkflow,
    ModelProviderError,
    StepType,
    WorkflowStep,
)

_ACTION_TYPES = (StepType.SEQUENTIAL, StepType.WORKER, StepType.ORCHESTRATOR)
_MODEL_ONLY = frozenset({AgentKind.CHAT_MODEL})
_REACT_KINDS = frozenset({AgentKind.CHAT_MODEL, AgentKind.GRAPH})


def _uses(step: WorkflowStep) -> Iterator[tuple[str, str, frozenset[AgentKind] | None]]:
    """`(name, role, kinds that fit)` of everything `step` calls (None: any kind)."""
    if step.step_type in _ACTION_TYPES:
        name = step.action or step.agent_capability or ""
        planner = step.step_type is StepType.ORCHESTRATOR and not step.action and not step.for_each
        yield name, "planner" if planner else "action", _MODEL_ONLY if planner else None
        for worker in step.workers:
            yield worker, "worker", None
        if step.reduce:
            yield step.reduce, "reduce action", None
    if step.step_type is StepType.REACT:
        yield step.agent_capability or "", "react model", _REACT_KINDS
    if step.step_type is StepType.CONDITIONAL and step.router is not None:
        yield step.router.capability, "router model", _MODEL_ONLY
    if step.step_type is StepType.CONDITIONAL and step.agent_capability:
        yield step.agent_capability, "adaptive routing model", _MODEL_ONLY


def check_agents(workflow: AdvancedWorkflow, actions: ActionInvoker) -> None:
    """Raise naming every missing or mismatched name of `workflow`, all at once."""
    kind_of = getattr(actions, "kind", None)
    missing: set[str] = set()
    wrong: list[str] = []
    packages: list[str] = []
    for step in workflow.iter_steps():
        for name, role, fits in _uses(step):
            if not actions.has_action(name):
                missing.add(name)
                continue
            kind = kind_of(name) if kind_of is not None else None
            if fits is not None and kind is not None and kind not in fits:
                allowed = " or ".join(k.value.replace("_", " ") for k in sorted(fits))
                wrong.append(
                    f"step '{step.step_id}' uses '{name}' as its {role}, which needs a "
                    f"{allowed}, but '{name}' is a {kind.value.replace('_', ' ')}"
                )
            package = _missing_package(actions, name)
            if package is not None:
                packages.append(f"'{name}' needs `pip install {package}`")
        for tool in step.tools:
            if not _has_tool(actions, tool):
                missing.add(tool)
    if packages:
        raise ModelProviderError(
            f"workflow '{workflow.workflow_id}' uses models whose provider packages are not "
            f"installed: {'; '.join(sorted(set(packages)))}"
        )
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"uses actions that are not registered: {', '.join(sorted(missing))}")
        parts.extend(wrong)
        raise ActionNotFoundError(
            f"workflow '{workflow.workflow_id}' {'; '.join(parts)}; register them on the "
            f"ActionRegistry ({workflow.actions or 'the registry passed in'})"
        )


def _missing_package(actions: Any, name: str) -> str | None:
    check = getattr(actions, "missing_package", None)
    return check(name) if check is not None else None


def _has_tool(actions: ActionInvoker, name: str) -> bool:
    try:
        actions.tool(name)
    except ActionNotFoundError:
        return False
    return True
