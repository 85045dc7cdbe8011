"""`WorkflowOptimizer`: learns from the runs in the database, recommends, applies, verifies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._loader import load_workflow
from orchestrator.optimizer._analysis import PerformanceMetrics, analyze
from orchestrator.optimizer._apply import apply_recommendations
from orchestrator.optimizer._history import RunRecord, as_records, load_runs
from orchestrator.optimizer._recommendation import OptimizationRecommendation
from orchestrator.optimizer._rules import DEFAULT_RULES, OptimizationRule, RuleContext, Thresholds
from orchestrator.optimizer._verify import Verification, verify_runs
from state import AdvancedWorkflow, RunNotFoundError

WorkflowRef = AdvancedWorkflow | Mapping[str, Any] | str | Path
"""A definition, its YAML/JSON path, plain data, or (for analysis) a workflow id whose newest
definition is read from the run database."""


class WorkflowOptimizer:
    """Learns from a workflow's past runs, recommends changes, applies them, checks the gain.

    Example:
        ```python
        opt = WorkflowOptimizer(checkpointer="sqlite:///runs.sqlite")   # or WorkflowOptimizer(orch)
        metrics = await opt.analyze_workflow_performance(workflow)
        recs = await opt.recommend(workflow, metrics)
        faster = opt.apply(workflow, recs)      # a new validated definition, version bumped
        ```

    `rules` replaces the built-in `DEFAULT_RULES` (pass `[*DEFAULT_RULES, mine]` to add one).
    """

    def __init__(
        self,
        orchestrator: EnterpriseWorkflowOrchestrator | str | None = None,
        *,
        checkpointer: str | None = None,
        rules: Sequence[OptimizationRule] | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        if isinstance(orchestrator, str):
            orchestrator, checkpointer = None, orchestrator
        self._owned = orchestrator is None
        self.orchestrator = orchestrator or EnterpriseWorkflowOrchestrator(
            checkpointer=checkpointer
        )
        """Whose run database the history comes from."""
        self.rules: list[OptimizationRule] = list(DEFAULT_RULES if rules is None else rules)
        """The rules `recommend` applies, highest priority first."""
        self.thresholds = thresholds or Thresholds()
        """Limits of the built-in rules."""

    async def __aenter__(self) -> WorkflowOptimizer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the database connections of an orchestrator this optimizer made itself."""
        if self._owned:
            await self.orchestrator.aclose()

    def add_rule(self, rule: OptimizationRule) -> None:
        """Apply `rule` too in later `recommend` calls."""
        self.rules.append(rule)

    async def history(self, workflow_id: str | None = None) -> list[RunRecord]:
        """Finished runs in the database (of one workflow), newest first."""
        return await load_runs(self.orchestrator, workflow_id)

    async def latest_workflows(self, workflow_id: str | None = None) -> list[AdvancedWorkflow]:
        """The definition each workflow's newest run used, by workflow id."""
        newest: dict[str, RunRecord] = {}
        for run in await self.history(workflow_id):
            newest.setdefault(run.workflow_id, run)
        return [AdvancedWorkflow.from_dict(newest[w].definition) for w in sorted(newest)]

    async def _resolve(self, workflow: WorkflowRef) -> AdvancedWorkflow:
        if isinstance(workflow, AdvancedWorkflow):
            return workflow
        if isinstance(workflow, Mapping):
            return AdvancedWorkflow.from_dict(workflow)
        if isinstance(workflow, Path) or Path(workflow).suffix in (".yaml", ".yml", ".json"):
            return load_workflow(workflow)
        found = await self.latest_workflows(workflow)
        if not found:
            raise RunNotFoundError(
                f"no finished runs of workflow '{workflow}' in "
                f"{self.orchestrator.checkpointer_url}; pass its definition (or YAML path), "
                "or the database its runs used"
            )
        return found[0]

    async def analyze_workflow_performance(
        self, workflow: WorkflowRef, history: Iterable[Any] | None = None
    ) -> PerformanceMetrics:
        """Metrics of the finished runs of this workflow id and version (or of `history`)."""
        wf = await self._resolve(workflow)
        if history is not None:
            runs = as_records(history)
        else:
            runs = [r for r in await self.history(wf.workflow_id) if r.version == wf.version]
        return analyze(wf, runs)

    async def recommend(
        self, workflow: WorkflowRef, metrics: PerformanceMetrics | None = None
    ) -> list[OptimizationRecommendation]:
        """Recommendations of every rule whose condition holds, highest priority first (then
        largest expected improvement)."""
        wf = await self._resolve(workflow)
        if metrics is None:
            metrics = await self.analyze_workflow_performance(wf)
        ctx = RuleContext(wf, metrics, self.thresholds)
        recs: list[OptimizationRecommendation] = []
        for rule in sorted(self.rules, key=lambda r: -r.priority):
            if rule.condition(ctx):
                recs += [replace(rec, priority=rule.priority) for rec in rule.build(ctx)]
        recs.sort(key=lambda r: (-r.priority, -r.expected_improvement, r.id))
        return recs

    def apply(
        self, workflow: AdvancedWorkflow, recommendations: Iterable[OptimizationRecommendation]
    ) -> AdvancedWorkflow:
        """A new validated definition with every applicable change made and the version
        bumped; `workflow` itself is unchanged. Advice-only recommendations are ignored."""
        return apply_recommendations(workflow, recommendations)

    async def verify(self, workflow_id: str | None = None) -> list[Verification]:
        """Measured makespan before and after each optimized version, against its
        prediction."""
        return verify_runs(await self.history(workflow_id))
