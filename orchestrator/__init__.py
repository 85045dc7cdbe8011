"""Assembly and the faces users touch: run facade, action registry, loader, graph, CLI.

Metrics (Prometheus), the optimizer and tracing are imported on first use, so
`import orchestrator` costs little more than `import langgraph.graph`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# first: name a user's state.py or nodes/ that shadows one of our packages
import orchestrator._shadowing  # noqa: F401
from nodes import RunHooks, StepContext
from orchestrator._audit import AuditLedger, VerifyResult
from orchestrator._audit_hooks import AuditHooks
from orchestrator._config import OrchestratorConfig
from orchestrator._engine import AdvancedWorkflowEngine
from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._graph import build_graph
from orchestrator._loader import load_workflow, workflow_schema
from orchestrator._logging import configure_logging, use_stdlib_logging
from orchestrator._picture import draw_workflow, render_workflow
from orchestrator._registry import ActionRegistry
from orchestrator._run import RunResult
from orchestrator.storage import DEFAULT_DB
from state._diagram import workflow_mermaid

if TYPE_CHECKING:
    from orchestrator._metrics import DatabaseCollector, MetricsCollector, serve_metrics
    from orchestrator._tracing import TracingHooks
    from orchestrator._watch import watch_run
    from orchestrator.optimizer import (
        OptimizationRecommendation,
        OptimizationRule,
        PerformanceMetrics,
        WorkflowOptimizer,
    )

_LAZY = {
    "DatabaseCollector": "orchestrator._metrics",
    "MetricsCollector": "orchestrator._metrics",
    "serve_metrics": "orchestrator._metrics",
    "watch_run": "orchestrator._watch",
    "TracingHooks": "orchestrator._tracing",
    "OptimizationRecommendation": "orchestrator.optimizer",
    "OptimizationRule": "orchestrator.optimizer",
    "PerformanceMetrics": "orchestrator.optimizer",
    "WorkflowOptimizer": "orchestrator.optimizer",
}


def __getattr__(name: str) -> Any:
    """Import metrics, the optimizer and tracing on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


use_stdlib_logging()

__all__ = [
    "DEFAULT_DB",
    "ActionRegistry",
    "AdvancedWorkflowEngine",
    "AuditHooks",
    "AuditLedger",
    "DatabaseCollector",
    "EnterpriseWorkflowOrchestrator",
    "MetricsCollector",
    "OptimizationRecommendation",
    "OptimizationRule",
    "OrchestratorConfig",
    "PerformanceMetrics",
    "RunHooks",
    "RunResult",
    "StepContext",
    "TracingHooks",
    "VerifyResult",
    "WorkflowOptimizer",
    "build_graph",
    "configure_logging",
    "draw_workflow",
    "load_workflow",
    "render_workflow",
    "serve_metrics",
    "watch_run",
    "workflow_mermaid",
    "workflow_schema",
]
