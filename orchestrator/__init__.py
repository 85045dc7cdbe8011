"""Assembly and the faces users touch: run facade, action registry, loader, graph, CLI."""

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
from orchestrator._metrics import DatabaseCollector, MetricsCollector, serve_metrics
from orchestrator._picture import draw_workflow, render_workflow
from orchestrator._registry import ActionRegistry
from orchestrator._run import RunResult
from orchestrator._tracing import TracingHooks
from orchestrator._watch import watch_run
from orchestrator.optimizer import (
    OptimizationRecommendation,
    OptimizationRule,
    PerformanceMetrics,
    WorkflowOptimizer,
)
from orchestrator.storage import DEFAULT_DB
from state._diagram import workflow_mermaid

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
