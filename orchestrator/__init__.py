"""Assembly and the faces users touch: run facade, action registry, loader, graph, CLI."""

from nodes import StepContext
from orchestrator._checkpointer import DEFAULT_DB
from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._graph import build_graph
from orchestrator._loader import load_workflow, workflow_schema
from orchestrator._registry import ActionRegistry
from orchestrator._run import RunResult

__all__ = [
    "DEFAULT_DB",
    "ActionRegistry",
    "EnterpriseWorkflowOrchestrator",
    "RunResult",
    "StepContext",
    "build_graph",
    "load_workflow",
    "workflow_schema",
]
