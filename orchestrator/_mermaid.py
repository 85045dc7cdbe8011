"""Mermaid flowcharts of a workflow's steps (the StateGraph itself draws with LangGraph)."""

from __future__ import annotations

import re

from state import AdvancedWorkflow, StepType, WorkflowStep

_SHAPES = {
    StepType.CONDITIONAL: ("{", "}"),
    StepType.HUMAN_APPROVAL: ("[/", "/]"),
    StepType.WEBHOOK: ("[(", ")]"),
    StepType.REACT: ("([", "])"),
    StepType.LOOP: ("[[", "]]"),
}


def _node_id(step_id: str) -> str:
    return "s_" + re.sub(r"\W", "_", step_id)


def _label(step: WorkflowStep) -> str:
    text = f"{step.display_name}<br/><small>{step.step_type.value}</small>"
    return '"' + text.replace('"', "'") + '"'


def _node(step: WorkflowStep) -> str:
    left, right = _SHAPES.get(step.step_type, ("[", "]"))
    return f"{_node_id(step.step_id)}{left}{_label(step)}{right}"


def workflow_mermaid(workflow: AdvancedWorkflow) -> str:
    """A Mermaid flowchart: steps, dependencies, routing rules and container children."""
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
    return "\n".join(lines) + "\n"
