"""Recommendations from past runs: per-workflow and per-step statistics, and rules over them.

`analyse(orch)` reads every run the index lists, with its latest checkpoint and the definition
it ran, and returns a `Report`: `WorkflowStats` (runs, outcomes, durations) with `StepStats`
(failures, retries, durations, skips) per workflow, and `Recommendation`s derived by the plain
rules of `Thresholds`, in a stable order (workflow, step, kind). The rules:

- a step failing in at least `failure_rate` of the runs it executed in -> `failing`;
- a step needing more than `mean_attempts` attempts on average -> `flaky`;
- a step (or a run) whose p95 duration exceeds `timeout_fraction` of its timeout -> `near_timeout`;
- a top-level step depending on one step whose results it does not read -> `parallelizable`;
- a conditional's target never taken in at least `branch_min_runs` runs -> `branch_never_taken`;
- runs flagged `sla_breached` -> `sla_breached`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from nodes._definition import workflow_from_state
from orchestrator._run import RunResult
from orchestrator.storage import sqlite_path
from state import AdvancedWorkflow, StepStatus, StepType, WorkflowStatus, WorkflowStep

if TYPE_CHECKING:
    from orchestrator._facade import EnterpriseWorkflowOrchestrator

SLA_FLAG = "sla_breached"
"""The compliance flag a run over its SLA carries."""


class RecommendationKind(StrEnum):
    """What a recommendation is about; the order here is the order within one step."""

    FAILING = "failing"
    FLAKY = "flaky"
    NEAR_TIMEOUT = "near_timeout"
    PARALLELIZABLE = "parallelizable"
    BRANCH_NEVER_TAKEN = "branch_never_taken"
    SLA_BREACHED = "sla_breached"


_KIND_ORDER = {kind: index for index, kind in enumerate(RecommendationKind)}


@dataclass(frozen=True)
class Thresholds:
    """When the rules of `analyse` speak up."""

    failure_rate: float = 0.2
    """A step failing in at least this share of the runs it executed in is `failing`."""
    mean_attempts: float = 1.5
    """A step needing more attempts than this on average is `flaky`."""
    timeout_fraction: float = 0.8
    """A p95 duration above this share of the timeout is `near_timeout`."""
    branch_min_runs: int = 5
    """Runs of a conditional before a target it never chose is `branch_never_taken`."""


@dataclass(frozen=True)
class StepStats:
    """How one step fared over the runs of its workflow."""

    step_id: str
    """Id of the step."""
    runs: int
    """Runs that recorded a result for the step (executed or skipped)."""
    executed: int
    """Runs in which it completed or failed."""
    failures: int
    """Runs in which it failed (also when `continue_on_failure` tolerated the failure)."""
    skips: int
    """Runs in which it was skipped without failing (branch not taken, dependency skipped)."""
    failure_rate: float
    """`failures / executed` (0 when it never executed)."""
    skip_rate: float
    """`skips / runs`."""
    mean_attempts: float | None
    """Mean attempts per execution (1.0: never retried); None when it never executed."""
    mean_duration_seconds: float | None
    """Mean duration of its executions."""
    p95_duration_seconds: float | None
    """95th percentile (nearest rank) of its durations."""


@dataclass(frozen=True)
class WorkflowStats:
    """How one workflow fared over its runs."""

    workflow_id: str
    """Id of the workflow."""
    runs: int
    """Runs recorded."""
    by_status: dict[str, int]
    """Runs per status, e.g. `{"completed": 4, "failed": 1}`."""
    success_rate: float
    """Share of the runs that completed."""
    mean_duration_seconds: float | None
    """Mean duration of the finished runs."""
    p95_duration_seconds: float | None
    """95th percentile (nearest rank) of their durations."""
    steps: list[StepStats] = field(default_factory=list)
    """Per step, in definition order (steps only older definitions had come last)."""


@dataclass(frozen=True)
class Recommendation:
    """One thing worth changing in a workflow, with the numbers that suggest it."""

    workflow_id: str
    """The workflow concerned."""
    step_id: str | None
    """The step concerned, or None for the workflow as a whole."""
    kind: RecommendationKind
    """Which rule fired."""
    message: str
    """What was seen and what to change."""
    evidence: dict[str, Any]
    """The numbers behind it."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {**asdict(self), "kind": self.kind.value}


@dataclass(frozen=True)
class Report:
    """What `analyse` found: stats per workflow and the recommendations, in a stable order."""

    workflows: list[WorkflowStats]
    """One entry per workflow with runs, by workflow id."""
    recommendations: list[Recommendation]
    """Ordered by workflow, step (workflow-wide first) and kind."""

    def to_json(self) -> dict[str, Any]:
        """The `optimize --json` object: `{"workflows": [...], "recommendations": [...]}`."""
        return {
            "workflows": [asdict(w) for w in self.workflows],
            "recommendations": [r.to_json() for r in self.recommendations],
        }


@dataclass
class _Runs:
    """The runs of one workflow and the newest definition they ran."""

    workflow: AdvancedWorkflow
    runs: list[RunResult] = field(default_factory=list)


async def analyse(
    orch: EnterpriseWorkflowOrchestrator,
    workflow_id: str | None = None,
    *,
    thresholds: Thresholds = Thresholds(),
) -> Report:
    """Statistics and recommendations over the runs in `orch`'s database (closed afterwards).

    `workflow_id` limits the report to one workflow. A SQLite database that does not exist has
    no runs (and is not created).

        report = await analyse(EnterpriseWorkflowOrchestrator(checkpointer="sqlite:///r.db"))
        for rec in report.recommendations:
            print(rec.workflow_id, rec.step_id, rec.kind, rec.message)
    """
    url = orch.checkpointer_url
    if url.startswith("sqlite:///") and not sqlite_path(url).exists():
        return Report([], [])
    groups: dict[str, _Runs] = {}
    async with orch:
        for row in orch.index.runs(workflow_id=workflow_id):  # newest first
            config = {"configurable": {"thread_id": row["run_id"]}}
            snapshot = await orch.graph.aget_state(config)  # type: ignore[arg-type]
            values = snapshot.values or {}
            if not values.get("workflow"):
                continue
            run = RunResult.from_snapshot(row["run_id"], snapshot)
            if run.workflow_id not in groups:
                definition = workflow_from_state(values["workflow"], values.get("workflow_key"))
                groups[run.workflow_id] = _Runs(definition)
            groups[run.workflow_id].runs.append(run)
    stats = [_workflow_stats(wid, groups[wid]) for wid in sorted(groups)]
    recs = [rec for ws in stats for rec in _recommend(ws, groups[ws.workflow_id], thresholds)]
    recs.sort(key=lambda r: (r.workflow_id, r.step_id or "", _KIND_ORDER[r.kind], r.message))
    return Report(stats, recs)


def _workflow_stats(workflow_id: str, group: _Runs) -> WorkflowStats:
    runs = group.runs
    by_status = Counter(run.status.value for run in runs)
    durations = [d for run in runs if (d := _run_duration(run)) is not None]
    order = [s.step_id for s in group.workflow.iter_steps()]
    seen = {sid for run in runs for sid in run.step_results}
    step_ids = [sid for sid in order if sid in seen] + sorted(seen - set(order))
    return WorkflowStats(
        workflow_id=workflow_id,
        runs=len(runs),
        by_status=dict(sorted(by_status.items())),
        success_rate=_ratio(by_status[WorkflowStatus.COMPLETED.value], len(runs)),
        mean_duration_seconds=_mean(durations),
        p95_duration_seconds=_p95(durations),
        steps=[_step_stats(sid, runs) for sid in step_ids],
    )


def _step_stats(step_id: str, runs: list[RunResult]) -> StepStats:
    results = [run.step_results[step_id] for run in runs if step_id in run.step_results]
    failed = [r for r in results if _failed(r)]
    executed = [r for r in results if r.get("status") == StepStatus.COMPLETED.value] + failed
    failures = len(failed)
    skips = sum(
        1 for r in results if r.get("status") == StepStatus.SKIPPED.value and not _failed(r)
    )
    durations = [float(r.get("duration_seconds") or 0.0) for r in executed]
    return StepStats(
        step_id=step_id,
        runs=len(results),
        executed=len(executed),
        failures=failures,
        skips=skips,
        failure_rate=_ratio(failures, len(executed)),
        skip_rate=_ratio(skips, len(results)),
        mean_attempts=_mean([float(r.get("attempts") or 1) for r in executed]),
        mean_duration_seconds=_mean(durations),
        p95_duration_seconds=_p95(durations),
    )


def _recommend(ws: WorkflowStats, group: _Runs, limits: Thresholds) -> list[Recommendation]:
    wf = group.workflow
    recs: list[Recommendation] = []

    def add(step_id: str | None, kind: RecommendationKind, message: str, **evidence: Any) -> None:
        recs.append(Recommendation(ws.workflow_id, step_id, kind, message, evidence))

    steps: dict[str, WorkflowStep] = {str(s.step_id): s for s in wf.iter_steps()}
    for st in ws.steps:
        step = steps.get(st.step_id)
        if st.failures and st.failure_rate >= limits.failure_rate:
            tolerated = bool(step and wf.effective_retry(step).continue_on_failure)
            advice = (
                "its failures are tolerated (continue_on_failure) but skip what waits for it; "
                "add error_handlers or check what it depends on"
                if tolerated
                else "add error_handlers or continue_on_failure, or check what it depends on"
            )
            add(
                st.step_id,
                RecommendationKind.FAILING,
                f"fails in {st.failures} of {st.executed} runs ({st.failure_rate:.0%}); {advice}",
                failures=st.failures,
                executed=st.executed,
                failure_rate=round(st.failure_rate, 4),
                continue_on_failure=tolerated,
            )
        if st.mean_attempts is not None and st.mean_attempts > limits.mean_attempts:
            max_attempts = wf.effective_retry(step).max_attempts if step else None
            add(
                st.step_id,
                RecommendationKind.FLAKY,
                f"flaky: {st.mean_attempts:.2f} attempts per run on average (max_attempts "
                f"{max_attempts}); raise max_attempts or the backoff, or add a circuit breaker",
                mean_attempts=round(st.mean_attempts, 4),
                max_attempts=max_attempts,
            )
        timeout = step.timeout if step else None
        p95 = st.p95_duration_seconds
        if timeout and p95 is not None and p95 > limits.timeout_fraction * timeout:
            add(
                st.step_id,
                RecommendationKind.NEAR_TIMEOUT,
                f"close to its timeout: p95 {p95:.3g}s of a {timeout:g}s timeout "
                f"({p95 / timeout:.0%}); raise timeout or speed the step up",
                p95_duration_seconds=round(p95, 6),
                timeout=timeout,
            )
    run_p95 = ws.p95_duration_seconds
    if wf.timeout and run_p95 is not None and run_p95 > limits.timeout_fraction * wf.timeout:
        add(
            None,
            RecommendationKind.NEAR_TIMEOUT,
            f"runs close to the workflow timeout: p95 {run_p95:.3g}s of {wf.timeout:g}s; "
            "raise timeout or run independent steps in parallel",
            p95_duration_seconds=round(run_p95, 6),
            timeout=wf.timeout,
        )
    for step in wf.steps:
        dep = _independent_dependency(step, steps)
        if dep is not None:
            add(
                step.step_id,
                RecommendationKind.PARALLELIZABLE,
                f"could run in parallel with '{dep}': it depends on '{dep}' but reads none of "
                "its results; drop the dependency or group both in a parallel step",
                dependency=dep,
            )
    for sid, target, decided in _branches_never_taken(wf, group.runs, limits.branch_min_runs):
        add(
            target,
            RecommendationKind.BRANCH_NEVER_TAKEN,
            f"branch never taken: conditional '{sid}' did not route here in {decided} runs; "
            "check its conditions or remove the branch",
            conditional=sid,
            runs=decided,
        )
    flagged = sum(1 for run in group.runs if SLA_FLAG in run.compliance_flags)
    if flagged:
        add(
            None,
            RecommendationKind.SLA_BREACHED,
            f"{flagged} of {ws.runs} runs breached an SLA target; speed up the slow steps or "
            "revisit sla_targets",
            runs_flagged=flagged,
            runs=ws.runs,
            targets=wf.sla_targets.model_dump(exclude_defaults=True),
        )
    return recs


def _independent_dependency(step: WorkflowStep, steps: dict[str, WorkflowStep]) -> str | None:
    """The single dependency of a plain action step that the step never reads, if any."""
    plain = {StepType.SEQUENTIAL, StepType.WORKER}
    if step.step_type not in plain or len(step.dependencies) != 1:
        return None
    dep = steps.get(step.dependencies[0])
    if dep is None or dep.step_type not in plain:
        return None
    reads = " ".join([*step.input_mapping.values(), *step.input_validation.values()])
    if re.search(rf"\bresults\s*\.\s*{re.escape(dep.step_id)}\b", reads):
        return None
    for key in dep.output_mapping:
        if re.search(rf"\bcontext\s*\.\s*{re.escape(key)}\b", reads):
            return None
    # a path naming the whole context or all results may read anything the dependency wrote
    if re.search(r"\b(context|results)\b(?!\s*\.)", reads):
        return None
    return str(dep.step_id)


def _branches_never_taken(
    wf: AdvancedWorkflow, runs: list[RunResult], min_runs: int
) -> list[tuple[str, str, int]]:
    """`(conditional, target, runs decided)` for targets no decided run of it ever chose."""
    found: list[tuple[str, str, int]] = []
    for step in wf.iter_steps():
        if step.step_type is not StepType.CONDITIONAL:
            continue
        decided = [
            run
            for run in runs
            if run.step_results.get(step.step_id, {}).get("status") == StepStatus.COMPLETED.value
        ]
        if len(decided) < min_runs:
            continue
        reason = f"branch not taken by conditional '{step.step_id}'"
        targets = sorted({str(t) for rule in step.conditions for t in rule.targets})
        for target in targets:
            if all(run.step_results.get(target, {}).get("reason") == reason for run in decided):
                found.append((str(step.step_id), target, len(decided)))
    return found


def _failed(result: dict[str, Any]) -> bool:
    """Failed, or failed and tolerated (`continue_on_failure` records it skipped with its error)."""
    status = result.get("status")
    return status == StepStatus.FAILED.value or (
        status == StepStatus.SKIPPED.value and result.get("error_type") is not None
    )


def _run_duration(run: RunResult) -> float | None:
    if not run.started_at or not run.finished_at:
        return None
    started = datetime.fromisoformat(run.started_at)
    return (datetime.fromisoformat(run.finished_at) - started).total_seconds()


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile: a value that was actually observed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
