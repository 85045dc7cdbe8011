"""The rules that turn metrics into recommendations: small objects users can add to.

A rule has a name, a priority, a condition over the `RuleContext` and a builder returning
recommendations. The built-in rules, by priority: parallelization (9), caching (8),
resources (7), timeouts and reliability (6), SLA breaches (4), routing (3).

    def big_payloads(ctx: RuleContext) -> list[OptimizationRecommendation]: ...
    rule = OptimizationRule("payloads", 5, lambda ctx: ctx.metrics.runs >= 2, big_payloads)
    WorkflowOptimizer(orch, rules=[*DEFAULT_RULES, rule])
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.optimizer._analysis import MIN_RUNS, PerformanceMetrics, StepPerformance
from orchestrator.optimizer._dataflow import (
    parallel_dependencies,
    schedule_makespan,
    waits_for,
)
from orchestrator.optimizer._history import RunRecord
from orchestrator.optimizer._recommendation import (
    Level,
    OptimizationRecommendation,
    RecommendationType,
    change,
)
from policies import map_inputs
from state import AdvancedWorkflow, MappingError, StepStatus, StepType

_CACHEABLE_TYPES = frozenset({StepType.SEQUENTIAL, StepType.WORKER, StepType.ORCHESTRATOR})


@dataclass(frozen=True)
class Thresholds:
    """When the built-in rules speak up."""

    failure_rate: float = 0.2
    """Unhandled failures per execution at which a step is `failing`."""
    mean_attempts: float = 1.5
    """Mean attempts above which a step is flaky."""
    timeout_fraction: float = 0.8
    """p95 above this share of a timeout is too close to it."""
    timeout_excess: float = 10.0
    """A timeout above this many times the observed p99 is far too generous."""
    min_executions: int = 3
    """Executions a step needs before resource rules judge it."""
    cache_min_seconds: float = 0.005
    """Steps faster than this are not worth caching."""
    branch_min_runs: int = 5
    """Runs of a conditional before a branch it never chose is reported."""


@dataclass(frozen=True)
class RuleContext:
    """What a rule sees."""

    workflow: AdvancedWorkflow
    """The definition analysed."""
    metrics: PerformanceMetrics
    """Its metrics."""
    thresholds: Thresholds = field(default_factory=Thresholds)
    """The limits of the built-in rules."""

    @property
    def runs(self) -> tuple[RunRecord, ...]:
        """The runs behind the metrics."""
        return self.metrics.history

    def rec(
        self,
        kind: RecommendationType,
        step_id: str | None,
        description: str,
        *,
        what: str = "",
        improvement: float = 0.0,
        effort: Level = Level.LOW,
        risk: Level = Level.LOW,
        changes: list[dict[str, Any]] | None = None,
        **evidence: Any,
    ) -> OptimizationRecommendation:
        """A recommendation about this workflow (the rule's priority is set by the caller)."""
        parts = [kind.value, self.workflow.workflow_id, step_id or "*"] + ([what] if what else [])
        return OptimizationRecommendation(
            id=":".join(parts),
            type=kind,
            description=description,
            expected_improvement=round(max(0.0, improvement), 4),
            effort=effort,
            risk=risk,
            priority=0,
            workflow_id=self.workflow.workflow_id,
            step_id=step_id,
            specific_changes=changes or [],
            evidence=evidence,
        )


Builder = Callable[[RuleContext], list[OptimizationRecommendation]]


@dataclass(frozen=True)
class OptimizationRule:
    """A named rule: when `condition` holds, `build` makes recommendations of `priority`."""

    name: str
    """Shown in errors and docs."""
    priority: int
    """Higher runs (and sorts) first."""
    condition: Callable[[RuleContext], bool]
    """Whether the rule applies at all."""
    build: Builder
    """The recommendations."""


def _enough(ctx: RuleContext) -> bool:
    return ctx.metrics.runs >= MIN_RUNS


def _parallelization(ctx: RuleContext) -> list[OptimizationRecommendation]:
    wf, metrics = ctx.workflow, ctx.metrics
    new = parallel_dependencies(wf)
    durations = {sid: p.expected_seconds for sid, p in metrics.step_performance.items()}
    before = schedule_makespan(wf, durations)
    after = schedule_makespan(wf, durations, new)
    saved = before - after
    measured = metrics.average_execution_time or before
    if saved <= 0 or measured <= 0:
        return []
    predicted = max(after, measured - saved)
    dropped = [
        [sid, d] for sid, deps in new.items() for d in wf.step(sid).dependencies if d not in deps
    ]
    risky = any(
        wf.step(d).rollback_actions or _perf(metrics, d).failure_rate > 0 for _, d in dropped
    )
    edges = ", ".join(f"'{s}' after '{d}'" for s, d in dropped)
    return [
        ctx.rec(
            RecommendationType.PARALLELIZATION,
            None,
            f"run steps concurrently: {len(dropped)} dependencies order steps that read "
            f"nothing of each other ({edges}); critical path {before:.3g}s -> {after:.3g}s, "
            f"expected makespan {measured:.3g}s -> {predicted:.3g}s",
            improvement=saved / measured,
            risk=Level.MEDIUM if risky else Level.LOW,
            changes=[
                change(sid, "dependencies", list(wf.step(sid).dependencies), deps)
                for sid, deps in new.items()
            ],
            dropped_edges=dropped,
            baseline_seconds=round(measured, 6),
            predicted_seconds=round(predicted, 6),
            seconds_saved=round(saved, 6),
        )
    ]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _caching(ctx: RuleContext) -> list[OptimizationRecommendation]:
    recs = []
    measured = ctx.metrics.average_execution_time or 0.0
    for step in ctx.workflow.iter_steps():
        perf = ctx.metrics.step_performance.get(step.step_id)
        if (
            step.step_type not in _CACHEABLE_TYPES
            or step.cacheable
            or step.rollback_actions
            or perf is None
            or perf.mean_seconds < ctx.thresholds.cache_min_seconds
        ):
            continue
        outputs = _outputs_by_inputs(ctx.runs, step.step_id, step.input_mapping)
        hits = sum(len(seen) - 1 for seen in outputs.values())
        if hits == 0 or any(len(set(seen)) > 1 for seen in outputs.values()):
            continue
        saved = hits / len(ctx.runs) * perf.mean_seconds
        recs.append(
            ctx.rec(
                RecommendationType.CACHING,
                step.step_id,
                f"cache '{step.step_id}': it returned the same output for the same inputs in "
                f"every run ({hits} of {len(ctx.runs)} runs repeated earlier inputs, "
                f"{perf.mean_seconds:.3g}s each); mark it cacheable",
                improvement=saved / measured if measured else 0.0,
                # the output may also depend on what the inputs do not show (time, a database)
                risk=Level.MEDIUM,
                changes=[change(step.step_id, "cacheable", False, True)],
                repeated_runs=hits,
                distinct_inputs=len(outputs),
                mean_seconds=round(perf.mean_seconds, 6),
            )
        )
    return recs


def _outputs_by_inputs(
    runs: tuple[RunRecord, ...], sid: str, mapping: dict[str, str]
) -> dict[str, list[str]]:
    """`{canonical inputs: [canonical output of each run]}` of a step's completed runs."""
    found: dict[str, list[str]] = {}
    for run in runs:
        result = run.step_results.get(sid, {})
        if result.get("status") != StepStatus.COMPLETED.value or sid not in run.outputs:
            continue
        try:
            key = _canonical(map_inputs(mapping, run.namespace))
        except MappingError:
            continue  # the inputs are no longer visible in the final namespace
        found.setdefault(key, []).append(_canonical(run.outputs[sid]))
    return found


def _perf(metrics: PerformanceMetrics, sid: str) -> StepPerformance:
    return metrics.step_performance.get(sid) or StepPerformance(
        sid, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0
    )


def _resources(ctx: RuleContext) -> list[OptimizationRecommendation]:
    wf, limits = ctx.workflow, ctx.thresholds
    recs = []
    for step in wf.iter_steps():
        perf = ctx.metrics.step_performance.get(step.step_id)
        if perf is None or perf.executed < limits.min_executions:
            continue
        p99 = perf.p99_seconds
        if step.timeout and p99 > 0 and step.timeout > limits.timeout_excess * p99:
            new = float(max(1, math.ceil(3 * p99)))
            if new < step.timeout:
                recs.append(
                    ctx.rec(
                        RecommendationType.RESOURCES,
                        step.step_id,
                        f"timeout of '{step.step_id}' is {step.timeout:g}s but its p99 is "
                        f"{p99:.3g}s; a hung call holds a slot {step.timeout / p99:.0f}x longer "
                        f"than needed: lower it to {new:g}s",
                        what="timeout",
                        risk=Level.MEDIUM,
                        changes=[change(step.step_id, "timeout", step.timeout, new)],
                        p99_seconds=round(p99, 6),
                    )
                )
        policy = wf.effective_retry(step)
        best = perf.max_successful_attempt
        wasted = _wasted_attempts(ctx.runs, step.step_id, best)
        if 0 < best < policy.max_attempts and wasted:
            recs.append(
                ctx.rec(
                    RecommendationType.RESOURCES,
                    step.step_id,
                    f"'{step.step_id}' never succeeded after attempt {best}, yet failing runs "
                    f"spent {wasted} more attempts (max_attempts {policy.max_attempts}): "
                    f"lower max_attempts to {best}",
                    what="retries",
                    changes=[
                        change(step.step_id, "retry_policy.max_attempts", policy.max_attempts, best)
                    ],
                    wasted_attempts=wasted,
                )
            )
    width = _width(wf)
    if "max_parallel_steps" in wf.model_fields_set and wf.max_parallel_steps > 2 * width:
        recs.append(
            ctx.rec(
                RecommendationType.RESOURCES,
                None,
                f"max_parallel_steps is {wf.max_parallel_steps} but at most {width} steps can "
                f"ever run at once: lower it to {width}",
                what="cap",
                changes=[change(None, "max_parallel_steps", wf.max_parallel_steps, width)],
                widest=width,
            )
        )
    return recs


def _wasted_attempts(runs: tuple[RunRecord, ...], sid: str, best: int) -> int:
    wasted = 0
    for run in runs:
        result = run.step_results.get(sid, {})
        if result.get("error_type") is not None:
            wasted += max(0, int(result.get("attempts") or 1) - best)
    return wasted


def _width(wf: AdvancedWorkflow) -> int:
    """Most steps (or children of one container) that can run at the same time, once the
    steps that need not wait for each other no longer do."""
    waits = waits_for(wf, parallel_dependencies(wf))
    level: dict[str, int] = {}

    def depth(sid: str) -> int:
        if sid not in level:
            level[sid] = 1 + max((depth(d) for d in waits.get(sid, ()) if d in waits), default=0)
        return level[sid]

    per_level: dict[int, int] = {}
    for sid in waits:
        per_level[depth(sid)] = per_level.get(depth(sid), 0) + 1
    children = max((len(s.parallel_steps) for s in wf.iter_steps()), default=0)
    return max([children, *per_level.values()])


def _timeouts(ctx: RuleContext) -> list[OptimizationRecommendation]:
    recs = []
    for step in ctx.workflow.iter_steps():
        perf = ctx.metrics.step_performance.get(step.step_id)
        if not step.timeout or perf is None or not perf.executed:
            continue
        if perf.p95_seconds > ctx.thresholds.timeout_fraction * step.timeout:
            new = float(math.ceil(2 * perf.p99_seconds))
            recs.append(
                ctx.rec(
                    RecommendationType.TIMEOUT,
                    step.step_id,
                    f"'{step.step_id}' runs close to its timeout: p95 {perf.p95_seconds:.3g}s "
                    f"of {step.timeout:g}s; raise it to {new:g}s or speed the step up",
                    risk=Level.LOW,
                    changes=[change(step.step_id, "timeout", step.timeout, new)],
                    p95_seconds=round(perf.p95_seconds, 6),
                    timeout=step.timeout,
                )
            )
    return recs


def _reliability(ctx: RuleContext) -> list[OptimizationRecommendation]:
    recs = []
    for step in ctx.workflow.iter_steps():
        perf = ctx.metrics.step_performance.get(step.step_id)
        if perf is None or not perf.executed:
            continue
        if perf.failure_rate and perf.failure_rate >= ctx.thresholds.failure_rate:
            fix = (
                "its error_handlers run but the failure still ends the run; "
                "check what it depends on"
                if step.error_handlers
                else "add error_handlers or continue_on_failure, or check what it depends on"
            )
            recs.append(
                ctx.rec(
                    RecommendationType.RELIABILITY,
                    step.step_id,
                    f"'{step.step_id}' fails in {perf.failure_rate:.0%} of its executions "
                    f"(unhandled); {fix}",
                    what="failing",
                    effort=Level.MEDIUM,
                    failure_rate=round(perf.failure_rate, 4),
                    handled_failure_rate=round(perf.handled_failure_rate, 4),
                )
            )
        if perf.mean_attempts > ctx.thresholds.mean_attempts:
            recs.append(
                ctx.rec(
                    RecommendationType.RELIABILITY,
                    step.step_id,
                    f"'{step.step_id}' is flaky: {perf.mean_attempts:.2f} attempts per "
                    "execution; fix the cause, or raise the backoff or add a circuit breaker",
                    what="flaky",
                    effort=Level.MEDIUM,
                    mean_attempts=round(perf.mean_attempts, 4),
                )
            )
    return recs


def _sla(ctx: RuleContext) -> list[OptimizationRecommendation]:
    flagged = sum(1 for run in ctx.runs if "sla_breached" in run.compliance_flags)
    if not flagged:
        return []
    return [
        ctx.rec(
            RecommendationType.SLA,
            None,
            f"{flagged} of {len(ctx.runs)} runs breached an SLA target; speed up the "
            "bottlenecks or revisit sla_targets",
            effort=Level.MEDIUM,
            runs_flagged=flagged,
        )
    ]


def _routing(ctx: RuleContext) -> list[OptimizationRecommendation]:
    recs = []
    for step in ctx.workflow.iter_steps():
        if step.step_type is not StepType.CONDITIONAL:
            continue
        decided = [
            run
            for run in ctx.runs
            if run.step_results.get(step.step_id, {}).get("status") == StepStatus.COMPLETED.value
        ]
        if len(decided) < ctx.thresholds.branch_min_runs:
            continue
        reason = f"branch not taken by conditional '{step.step_id}'"
        for target in sorted({str(t) for rule in step.conditions for t in rule.targets}):
            if all(run.step_results.get(target, {}).get("reason") == reason for run in decided):
                recs.append(
                    ctx.rec(
                        RecommendationType.ROUTING,
                        target,
                        f"conditional '{step.step_id}' never routed to '{target}' in "
                        f"{len(decided)} runs; check its conditions or remove the branch",
                        effort=Level.MEDIUM,
                        conditional=step.step_id,
                        runs=len(decided),
                    )
                )
    return recs


DEFAULT_RULES: tuple[OptimizationRule, ...] = (
    OptimizationRule("parallelization", 9, _enough, _parallelization),
    OptimizationRule("caching", 8, _enough, _caching),
    OptimizationRule("resources", 7, _enough, _resources),
    OptimizationRule("timeouts", 6, _enough, _timeouts),
    OptimizationRule("reliability", 6, _enough, _reliability),
    OptimizationRule("sla", 4, _enough, _sla),
    OptimizationRule("routing", 3, _enough, _routing),
)
"""The built-in rules, highest priority first."""
