"""The optimizer: learns from past runs, recommends changes, applies and verifies them.

`WorkflowOptimizer` reads history through the orchestrator's run index, `analyze_...` turns
it into `PerformanceMetrics`, rules (`DEFAULT_RULES`, or your own `OptimizationRule`s) turn
metrics into `OptimizationRecommendation`s, `apply` makes their `specific_changes`, and
`verify` compares the measured makespan of the optimized version with the prediction.
"""

from orchestrator.optimizer._analysis import Bottleneck, PerformanceMetrics, StepPerformance
from orchestrator.optimizer._history import RunRecord
from orchestrator.optimizer._optimizer import WorkflowOptimizer
from orchestrator.optimizer._recommendation import (
    Level,
    OptimizationRecommendation,
    RecommendationType,
)
from orchestrator.optimizer._rules import DEFAULT_RULES, OptimizationRule, RuleContext, Thresholds
from orchestrator.optimizer._verify import Verification

__all__ = [
    "DEFAULT_RULES",
    "Bottleneck",
    "Level",
    "OptimizationRecommendation",
    "OptimizationRule",
    "PerformanceMetrics",
    "RecommendationType",
    "RuleContext",
    "RunRecord",
    "StepPerformance",
    "Thresholds",
    "Verification",
    "WorkflowOptimizer",
]
