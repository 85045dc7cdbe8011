"""`PerformanceMetrics`: what the runs of one workflow version measured.

Per step: mean, variance, p50 and p95 of the wall time of its executions, failure, retry and
skip rates. Business outcomes are not failures: a rejected or expired approval, a branch not
taken. Handled failures (an error handler ran, or `continue_on_failure` tolerated it) are
counted apart from unhandled ones. Bottlenecks are steps whose mean exceeds the mean of the
step means plus one standard deviation, and steps whose variance exceeds half their mean.

The optimization score (0-100) weighs how often runs end in error (40 %), how many attempts
were retries (30 %), and how close the measured makespan is to the best schedule the data
dependencies allow (30 %): a workflow that fails less, retries less or waits less scores
higher.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.optimizer._dataflow import parallel_dependencies, schedule_makespan
from orchestrator.optimizer._history import RunRecord
from state import AdvancedWorkflow, StepStatus, WorkflowStatus

BUSINESS_OUTCOMES = frozenset({"ApprovalRejectedError", "ApprovalTimeoutError"})
"""Error types that record a decision, not a malfunction."""

_FINISHED = frozenset(
    {StepStatus.COMPLETED.value, StepStatus.FAILED.value, StepStatus.SKIPPED.value}
)
"""Step statuses that say how a step ended (a failed run leaves later steps `pending`)."""

MIN_RUNS = 2
"""Fewer runs than this give empty metrics with a note."""


@dataclass(frozen=True)
class StepPerformance:
    """How one step fared over the runs analysed."""

    step_id: str
    """Id of the step."""
    runs: int
    """Runs that recorded a result for it."""
    executed: int
    """Runs in which it ran (completed or failed)."""
    mean_seconds: float
    """Mean wall time of its executions."""
    variance: float
    """Population variance of those times (seconds squared)."""
    p50_seconds: float
    """Median time (nearest rank)."""
    p95_seconds: float
    """95th percentile (nearest rank)."""
    p99_seconds: float
    """99th percentile (nearest rank)."""
    failure_rate: float
    """Unhandled failures per execution."""
    handled_failure_rate: float
    """Failures an error handler or `continue_on_failure` took care of, per execution."""
    business_outcome_rate: float
    """Decisions such as a rejection, per execution (not failures)."""
    retry_rate: float
    """Executions that needed more than one attempt, per execution."""
    mean_attempts: float
    """Attempts per execution (1.0: never retried)."""
    max_successful_attempt: int
    """The highest attempt that ever succeeded (0: never succeeded)."""
    skip_rate: float
    """Runs in which it was skipped (branch not taken), per run."""
    mean_cpu_seconds: float
    """Mean CPU time of its executions."""
    expected_seconds: float
    """Mean time per run, skipped runs counting 0: what it adds to a run on average."""


@dataclass(frozen=True)
class Bottleneck:
    """A step that slows runs down, and why."""

    step_id: str
    """Id of the step."""
    reasons: list[str]
    """`slow` (mean above the mean of means plus one standard deviation) and/or `variable`
    (variance above half its mean)."""
    mean_seconds: float
    """Its mean time."""
    variance: float
    """Its variance."""


@dataclass(frozen=True)
class PerformanceMetrics:
    """What the runs of one workflow version measured (`WorkflowOptimizer.analyze_...`)."""

    workflow_id: str
    """Id of the workflow."""
    version: str
    """Version analysed."""
    runs: int
    """Runs analysed."""
    average_execution_time: float | None = None
    """Mean makespan of the runs, in seconds."""
    success_rate: float = 0.0
    """Runs that completed, per run."""
    error_rate: float = 0.0
    """Runs that ended in an error (not a business decision), per run."""
    business_outcome_rate: float = 0.0
    """Runs that ended because of a decision (a rejection), per run."""
    by_status: dict[str, int] = field(default_factory=dict)
    """Runs per final status."""
    step_performance: dict[str, StepPerformance] = field(default_factory=dict)
    """Per step, in definition order."""
    bottlenecks: list[Bottleneck] = field(default_factory=list)
    """Steps that slow runs down."""
    resource_usage: dict[str, float] = field(default_factory=dict)
    """Per run on average: `wall_seconds`, `cpu_seconds` and `attempts` summed over steps."""
    critical_path_seconds: float | None = None
    """Makespan of the best schedule the data dependencies allow, from measured step times."""
    optimization_score: float = 0.0
    """0 (much to gain) to 100 (nothing measured to improve)."""
    notes: list[str] = field(default_factory=list)
    """Why metrics are empty or partial."""
    history: tuple[RunRecord, ...] = field(default=(), repr=False, compare=False)
    """The runs analysed (used by `recommend`; not part of the JSON)."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (without the runs)."""
        data = asdict(self)
        data.pop("history")
        return data


def analyze(workflow: AdvancedWorkflow, runs: list[RunRecord]) -> PerformanceMetrics:
    """Metrics of `runs` of `workflow` (empty, with a note, for fewer than two runs)."""
    ident: dict[str, Any] = {"workflow_id": workflow.workflow_id, "version": workflow.version}
    if len(runs) < MIN_RUNS:
        note = (
            f"{len(runs)} finished run(s) of {workflow.workflow_id} version {workflow.version}; "
            f"at least {MIN_RUNS} are needed: run the workflow, then analyse again"
        )
        return PerformanceMetrics(**ident, runs=len(runs), notes=[note], history=tuple(runs))
    by_status: dict[str, int] = {}
    for run in runs:
        by_status[run.status.value] = by_status.get(run.status.value, 0) + 1
    business = sum(1 for r in runs if (r.error or {}).get("error_type") in BUSINESS_OUTCOMES)
    unsuccessful = len(runs) - by_status.get(WorkflowStatus.COMPLETED.value, 0)
    order: list[str] = [s.step_id for s in workflow.iter_steps()]
    steps = {sid: perf for sid in order if (perf := _step(sid, runs)) is not None}
    makespans = [r.makespan_seconds for r in runs if r.makespan_seconds is not None]
    average = statistics.fmean(makespans) if makespans else None
    durations = {sid: p.expected_seconds for sid, p in steps.items()}
    ideal = schedule_makespan(workflow, durations, parallel_dependencies(workflow))
    executions = sum(p.executed for p in steps.values())
    retried = sum(p.retry_rate * p.executed for p in steps.values())
    metrics = PerformanceMetrics(
        **ident,
        runs=len(runs),
        average_execution_time=average,
        success_rate=by_status.get(WorkflowStatus.COMPLETED.value, 0) / len(runs),
        error_rate=(unsuccessful - business) / len(runs),
        business_outcome_rate=business / len(runs),
        by_status=dict(sorted(by_status.items())),
        step_performance=steps,
        bottlenecks=bottlenecks(steps),
        resource_usage=_usage(runs),
        critical_path_seconds=ideal,
        history=tuple(runs),
    )
    score = optimization_score(
        error_rate=metrics.error_rate,
        retry_share=retried / executions if executions else 0.0,
        efficiency=min(1.0, ideal / average) if average else 1.0,
    )
    return PerformanceMetrics(**{**_fields(metrics), "optimization_score": score})


def optimization_score(*, error_rate: float, retry_share: float, efficiency: float) -> float:
    """0-100: 40 points for runs without errors, 30 for attempts that were not retries, 30 for
    a makespan close to the critical path. Each input is clamped to [0, 1]."""

    def unit(x: float) -> float:
        return min(1.0, max(0.0, x))

    points = 40 * (1 - unit(error_rate)) + 30 * (1 - unit(retry_share)) + 30 * unit(efficiency)
    return round(points, 1)


def bottlenecks(steps: dict[str, StepPerformance]) -> list[Bottleneck]:
    """Steps slower than the mean of means plus one standard deviation, or whose variance
    exceeds half their mean."""
    ran = [p for p in steps.values() if p.executed]
    if not ran:
        return []
    means = [p.mean_seconds for p in ran]
    limit = statistics.fmean(means) + statistics.pstdev(means)
    found = []
    for perf in ran:
        reasons = []
        if perf.mean_seconds > limit:
            reasons.append("slow")
        if perf.executed > 1 and perf.variance > perf.mean_seconds / 2:
            reasons.append("variable")
        if reasons:
            found.append(Bottleneck(perf.step_id, reasons, perf.mean_seconds, perf.variance))
    return found


def _fields(metrics: PerformanceMetrics) -> dict[str, Any]:
    return {name: getattr(metrics, name) for name in metrics.__dataclass_fields__}


def _executed(result: dict[str, Any]) -> bool:
    status = result.get("status")
    tolerated = status == StepStatus.SKIPPED.value and result.get("error_type") is not None
    return status in (StepStatus.COMPLETED.value, StepStatus.FAILED.value) or tolerated


def _step(step_id: str, runs: list[RunRecord]) -> StepPerformance | None:
    pairs = [
        (run, result)
        for run in runs
        if (result := run.step_results.get(step_id, {})).get("status") in _FINISHED
    ]
    if not pairs:
        return None
    done = [(run, r) for run, r in pairs if _executed(r)]
    times = [float(r.get("duration_seconds") or 0.0) for _, r in done]
    attempts = [int(r.get("attempts") or 1) for _, r in done]
    business = handled = failed = 0
    for run, r in done:
        kind = r.get("error_type")
        if kind is None:
            continue
        if kind in BUSINESS_OUTCOMES:
            business += 1
        elif r.get("status") == StepStatus.SKIPPED.value or step_id in run.handled_failures:
            handled += 1
        else:
            failed += 1
    wins = [a for (_, r), a in zip(done, attempts, strict=True) if r.get("error_type") is None]
    n = len(done)
    cpu = [float(r.get("cpu_seconds") or 0.0) for _, r in done]
    return StepPerformance(
        step_id=step_id,
        runs=len(pairs),
        executed=n,
        mean_seconds=statistics.fmean(times) if times else 0.0,
        variance=statistics.pvariance(times) if times else 0.0,
        p50_seconds=_rank(times, 0.50),
        p95_seconds=_rank(times, 0.95),
        p99_seconds=_rank(times, 0.99),
        failure_rate=failed / n if n else 0.0,
        handled_failure_rate=handled / n if n else 0.0,
        business_outcome_rate=business / n if n else 0.0,
        retry_rate=sum(1 for a in attempts if a > 1) / n if n else 0.0,
        mean_attempts=statistics.fmean(attempts) if attempts else 0.0,
        max_successful_attempt=max(wins, default=0),
        skip_rate=(len(pairs) - n) / len(pairs),
        mean_cpu_seconds=statistics.fmean(cpu) if cpu else 0.0,
        expected_seconds=sum(times) / len(runs),
    )


def _usage(runs: list[RunRecord]) -> dict[str, float]:
    totals = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "attempts": 0.0}
    for run in runs:
        for usage in run.resource_usage.values():
            for key in totals:
                totals[key] += float(usage.get(key) or 0.0)
    return {key: round(value / len(runs), 6) for key, value in totals.items()}


def _rank(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed (0 when there is none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
