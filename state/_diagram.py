"""Mermaid flowcharts of a workflow's steps, optionally coloured by a run's step statuses.

(The StateGraph itself draws with LangGraph: `orch.graph.get_graph().draw_mermaid()`.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from state._enums import StepType
from state._step import WorkflowStep

if TYPE_CHECKING:
    from state._workflow import AdvancedWorkflow

_SHAPES = {
    StepType.CONDITIONAL: ("{", "}"),
    StepType.HUMAN_APPROVAL: ("[/", "/]"),
    StepType.WEBHOOK: ("[(", ")]"),
    StepType.REACT: ("([", "])"),
    StepType.LOOP: ("[[", "]]"),
}

STATUS_COLOURS = {
    "completed": "#c8e6c9",
    "failed": "#ffcdd2",
    "skipped": "#eeeeee",
    "waiting": "#fff9c4",
    "running": "#bbdefb",
    "pending": "#ffffff",
}
"""Fill colour of a step per status in a coloured diagram."""


def _node_id(step_id: str) -> str:
    return "s_" + re.sub(r"\W", "_", step_id)


def _label(step: WorkflowStep) -> str:
    text = f"{step.display_name}<br/><small>{step.step_type.value}</small>"
    return '"' + text.replace('"', "'") + '"'


def _node(step: WorkflowStep) -> str:
    left, right = _SHAPES.get(step.step_type, ("[", "]"))
    return f"{_node_id(step.step_id)}{left}{_label(step)}{right}"


def workflow_mermaid(workflow: AdvancedWorkflow, statuses: Mapping[str, str] | None = None) -> str:
    """A Mermaid flowchart: steps, dependencies, routing rules and container children.

    With `statuses` (`{step_id: "completed" | "failed" | "skipped" | "waiting" | ...}`, as a
    run reports them) each step is filled with its status colour.
    """
    lines = ["flowchart TD", f"  %% {workflow.name} ({workflow.workflow_id} v{workflow.version})"]
    for step in workflow.steps:
        if step.children:
            lines.append(f'  subgraph {_node_id(step.step_id)}_box["{step.display_name}"]')
            lines.append(f"    {_node(step)}")
            lines.extend(f"    {_node(child)}" for child in step.children)
            lines.append("  end")
            for child in step.children:
                arrow = "-->" if step.step_type is StepType.LOOP else "-.->"
                lines.append(f"  {_node_id(step.step_id)} {arrow} {_node_id(child.step_id)}")
        else:
            lines.append(f"  {_node(step)}")
    for step in workflow.steps:
        for dep in step.dependencies:
            lines.append(f"  {_node_id(dep)} --> {_node_id(step.step_id)}")
        for nxt in step.next_steps:
            lines.append(f"  {_node_id(step.step_id)} --> {_node_id(nxt)}")
        for handler in step.error_handlers:
            lines.append(f'  {_node_id(step.step_id)} -.->|"on failure"| {_node_id(handler)}')
        if step.approval is not None and step.approval.on_reject:
            target = _node_id(step.approval.on_reject)
            lines.append(f'  {_node_id(step.step_id)} -.->|"on reject"| {target}')
        for rule in step.conditions:
            label = (rule.if_ or "else").replace('"', "'").replace("|", "/")
            for target in rule.targets:
                lines.append(f'  {_node_id(step.step_id)} -->|"{label}"| {_node_id(target)}')
    if statuses:
        used = sorted({s for s in statuses.values() if s in STATUS_COLOURS})
        for status in used:
            lines.append(f"  classDef {status} fill:{STATUS_COLOURS[status]},stroke:#555")
        for status in used:
            ids = ",".join(_node_id(sid) for sid, s in statuses.items() if s == status)
            lines.append(f"  class {ids} {status}")
    return "\n".join(lines) + "\n"


def mermaid_block(text: str) -> str:
    """Mermaid source as a fenced block, which Jupyter and code hosts draw as a diagram."""
    return f"```mermaid\n{text}```\n"
