"""Reading workflow definitions from YAML or JSON files, and their JSON Schema."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import yaml

from nodes import load_actions_module
from state import (
    ActionNotFoundError,
    AdvancedWorkflow,
    DefinitionProblem,
    StepType,
    WorkflowDefinitionError,
)


def load_workflow(path: str | Path) -> AdvancedWorkflow:
    """Load and validate a definition (`.yaml`, `.yml` or `.json`).

    Raises `WorkflowDefinitionError` listing every problem, including unreadable files.
    """
    source = str(path)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowDefinitionError(
            [DefinitionProblem("file", f"cannot read {source}: {exc.strerror or exc}")],
            source=source,
        ) from None
    is_json = file.suffix.lower() == ".json"
    try:
        data: Any = json.loads(text) if is_json else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise WorkflowDefinitionError(
            [DefinitionProblem("file", f"not valid {'JSON' if is_json else 'YAML'}: {exc}")],
            source=source,
        ) from None
    return AdvancedWorkflow.from_dict(data, source=source)


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow definition (YAML field names)."""
    return AdvancedWorkflow.model_json_schema(by_alias=True, mode="validation")


def unregistered_actions(workflow: AdvancedWorkflow) -> list[DefinitionProblem]:
    """Every action, agent or tool the workflow names that its `actions:` module does not
    register, with the closest registered name; an unimportable module is one problem."""
    try:
        registry = load_actions_module(workflow.actions or "")
    except ActionNotFoundError as exc:
        return [DefinitionProblem("actions", str(exc))]
    names = sorted(getattr(registry, "names", []))
    problems = []
    for step in workflow.iter_steps():
        wanted: list[tuple[str, str]] = []
        if step.step_type in (StepType.SEQUENTIAL, StepType.WORKER, StepType.ORCHESTRATOR):
            field = "action" if step.action else "agent_capability"
            wanted.append((field, step.action or step.agent_capability or ""))
        wanted.extend(("tools", tool) for tool in step.tools if not _has_tool(registry, tool))
        for field, name in wanted:
            if field != "tools" and registry.has_action(name):
                continue
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                DefinitionProblem(
                    f"step '{step.step_id}'.{field}",
                    f"'{name}' is not registered in {workflow.actions}{hint}; register it "
                    "on that module's `registry` or fix the name",
                )
            )
    return problems


def _has_tool(registry: Any, name: str) -> bool:
    try:
        registry.tool(name)
    except ActionNotFoundError:
        return False
    return True
