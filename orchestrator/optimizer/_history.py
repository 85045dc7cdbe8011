"""The runs the optimizer learns from: read from the run database, or passed in.

A `RunRecord` is what one finished run tells the optimizer: which version of the workflow it
ran, how long it took, and each step's result, resource usage and output. The database is
read through the orchestrator's run index and each run's latest checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator._run import RunResult
from orchestrator.storage import sqlite_path
from state import InvalidInputError, WorkflowStatus, unpack

if TYPE_CHECKING:
    from orchestrator._facade import EnterpriseWorkflowOrchestrator

LEARNED_STATUSES = frozenset(
    {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TIMED_OUT}
)
"""Runs the optimizer learns from: finished ones (cancelled and unfinished runs say little)."""


@dataclass(frozen=True)
class RunRecord:
    """One finished run as the optimizer sees it."""

    run_id: str
    """Id of the run."""
    workflow_id: str
    """Id of the workflow."""
    version: str
    """Version of the definition the run used."""
    status: WorkflowStatus
    """How it ended."""
    makespan_seconds: float | None
    """Wall time from start to end."""
    step_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """`{step_id: StepResult data}`."""
    resource_usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    """`{step_id: {wall_seconds, cpu_seconds, attempts}}`."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """`{step_id: output}` of the steps that completed."""
    namespace: dict[str, Any] = field(default_factory=dict)
    """The final `{input, context, results, globals}` (inputs of steps are re-mapped from it)."""
    error: dict[str, Any] | None = None
    """What ended the run, if it failed."""
    compliance_flags: list[str] = field(default_factory=list)
    """Flags the run raised."""
    handled_failures: list[str] = field(default_factory=list)
    """Failed steps whose failure an error handler took care of."""
    optimized_from: dict[str, Any] | None = None
    """The definition's `optimized_from` (base version and prediction), if any."""
    definition: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The definition the run used, as plain data."""

    @classmethod
    def from_values(
        cls, run_id: str, values: Mapping[str, Any], status: WorkflowStatus | None = None
    ) -> RunRecord:
        """Read a run from its checkpoint values (or from a dict of the same shape)."""
        values = unpack(values)
        definition = values.get("workflow") or {}
        results = dict(values.get("intermediate_results") or {})
        return cls(
            run_id=run_id,
            workflow_id=str(values.get("workflow_id") or definition.get("workflow_id") or ""),
            version=str(values.get("version") or definition.get("version") or "1.0"),
            status=status or WorkflowStatus(values.get("status", "completed")),
            makespan_seconds=_makespan(values.get("started_at"), values.get("finished_at")),
            step_results=dict(values.get("step_results") or {}),
            resource_usage=dict(values.get("resource_usage") or {}),
            outputs=results,
            namespace={
                "input": dict(values.get("input") or {}),
                "context": dict(values.get("context") or {}),
                "results": results,
                "globals": dict(definition.get("global_variables") or {}),
            },
            error=values.get("error"),
            compliance_flags=list(values.get("compliance_flags") or []),
            handled_failures=list(values.get("handled_failures") or []),
            optimized_from=definition.get("optimized_from"),
            definition=dict(definition),
        )


def as_records(history: Iterable[Any]) -> list[RunRecord]:
    """`history=[...]` as records: `RunRecord`s, `RunResult`s or checkpoint-shaped dicts."""
    records: list[RunRecord] = []
    for index, item in enumerate(history):
        if isinstance(item, RunRecord):
            records.append(item)
        elif isinstance(item, RunResult):
            values = {
                "workflow_id": item.workflow_id,
                "status": item.status.value,
                "started_at": item.started_at,
                "finished_at": item.finished_at,
                "step_results": item.step_results,
                "context": item.context,
                "error": item.error,
                "compliance_flags": item.compliance_flags,
            }
            records.append(RunRecord.from_values(item.run_id, values))
        elif isinstance(item, Mapping):
            records.append(RunRecord.from_values(str(item.get("run_id", index)), item))
        else:
            raise InvalidInputError(
                f"history[{index}] is a {type(item).__name__}; pass RunRecord or RunResult "
                "objects, or dicts shaped like a run's state (step_results, started_at, ...)"
            )
    return records


async def load_runs(
    orch: EnterpriseWorkflowOrchestrator, workflow_id: str | None = None
) -> list[RunRecord]:
    """Finished runs in `orch`'s database, newest first (none if the SQLite file is missing)."""
    url = orch.checkpointer_url
    if url.startswith("sqlite:///") and not sqlite_path(url).exists():
        return []
    await orch.__aenter__()  # opens the database; a no-op when the caller already did
    records: list[RunRecord] = []
    for row in orch.index.runs(workflow_id=workflow_id):
        snapshot = await orch.graph.aget_state({"configurable": {"thread_id": row["run_id"]}})
        values = snapshot.values or {}
        if not values.get("workflow"):
            continue
        status = RunResult.from_snapshot(row["run_id"], snapshot).status
        if status in LEARNED_STATUSES:
            records.append(RunRecord.from_values(row["run_id"], values, status))
    return records


def _makespan(started: Any, finished: Any) -> float | None:
    if not started or not finished:
        return None
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
