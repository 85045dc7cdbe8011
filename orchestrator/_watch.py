"""Where runs stand, read from the database: `status RUN_ID --watch` and the run list.

`watch_run` follows one run as its checkpoints land, until it finishes or waits;
`refreshed_runs` lists the runs of the index after re-reading the unfinished ones (for `runs`
and the `metrics` command's gauges).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from nodes._scheduler import plan
from orchestrator._run import RunResult
from orchestrator.storage import sqlite_path
from state import AdvancedWorkflow, RunNotFoundError, WorkflowStatus, unpack

if TYPE_CHECKING:
    from orchestrator._facade import EnterpriseWorkflowOrchestrator

BAR_WIDTH = 24
"""Characters of the progress bar drawn on a terminal."""

IDLE_POLLS = 3
"""Looks in a row that find an unfinished run no other process executes before watching stops
(the run was interrupted; `resume` continues it)."""


@dataclass(frozen=True)
class Progress:
    """What one look at a run shows."""

    run: RunResult
    """The run as its latest checkpoint shows it."""
    done: int
    """Steps (nested ones included) that completed, failed or were skipped."""
    total: int
    """Steps in the workflow, nested ones included."""
    current: list[str]
    """Steps being run now."""

    def line(self) -> str:
        """One plain-text line: `run R (wf): running, 2/5 steps done; current: charge`."""
        text = (
            f"run {self.run.run_id} ({self.run.workflow_id}): {self.run.status.value}, "
            f"{self.done}/{self.total} steps done"
        )
        return text + (f"; current: {', '.join(self.current)}" if self.current else "")

    def bar(self) -> str:
        """The line with a progress bar in front, for a terminal."""
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.line()}"


def stops_watching(run: RunResult) -> bool:
    """True when the run finished or waits for someone (approval, resume)."""
    return run.status.is_terminal or run.status in (
        WorkflowStatus.WAITING_APPROVAL,
        WorkflowStatus.PAUSED,
    )


def in_flight(run: RunResult, values: Mapping[str, Any]) -> list[str]:
    """The steps a running run is executing, from its latest checkpoint's values.

    A lone step runs inside the orchestrator's superstep, so no checkpoint names it while it
    runs; it is then the step the scheduler picks from what has finished.
    """
    if run.status is not WorkflowStatus.RUNNING:
        return []
    if current := list(values.get("current_steps") or []):
        return current
    return plan(
        AdvancedWorkflow.from_dict(values["workflow"]),
        completed=run.completed_steps,
        failed=run.failed_steps,
        skipped=run.skipped_steps,
        triggered=values.get("triggered_steps") or (),
        handled=values.get("handled_failures") or (),
    ).ready


async def _values(orch: EnterpriseWorkflowOrchestrator, run_id: str) -> Mapping[str, Any]:
    snapshot = await orch.graph.aget_state({"configurable": {"thread_id": run_id}})
    return unpack(snapshot.values or {})


async def look(orch: EnterpriseWorkflowOrchestrator, run_id: str) -> Progress:
    """Read a run's progress from its latest checkpoint (raises `RunNotFoundError`)."""
    run = await orch.status(run_id)
    values = await _values(orch, run_id)
    total = sum(1 for _ in AdvancedWorkflow.from_dict(values["workflow"]).iter_steps())
    finished = {*run.completed_steps, *run.failed_steps, *run.skipped_steps}
    return Progress(run, min(len(finished), total), total, in_flight(run, values))


async def watch_run(
    orch: EnterpriseWorkflowOrchestrator,
    run_id: str,
    *,
    out: IO[str],
    interval: float = 0.5,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    tty: bool | None = None,
) -> RunResult:
    """Show a run's progress until it finishes, waits (approval, pause) or is interrupted.

    On a terminal the progress line is redrawn in place; otherwise a plain line is written each
    time the progress changes. Returns the run as last seen. Meant for watching a run another
    process executes (the CLI): a run that no other process executes for `IDLE_POLLS` looks in
    a row counts as interrupted and ends the watch.

    Example:
        ```python
        run = await watch_run(orch, "R-1", out=sys.stdout)
        ```
    """
    tty = out.isatty() if tty is None else tty
    shown, idle = "", 0
    while True:
        progress = await look(orch, run_id)
        text = progress.bar() if tty else progress.line()
        if text != shown:
            out.write(f"\r{text}\033[K" if tty else f"{text}\n")
            out.flush()
            shown = text
        run = progress.run
        idle = 0 if orch.index.executing_elsewhere(run_id) else idle + 1
        if stops_watching(run) or idle >= IDLE_POLLS:
            if tty:
                out.write("\n")
            return run
        await sleep(interval)


async def refreshed_runs(
    orch: EnterpriseWorkflowOrchestrator,
    *,
    status: str | None = None,
    workflow_id: str | None = None,
) -> list[dict[str, Any]]:
    """The runs of the index, newest first, after re-reading every unfinished one.

    Rows are those of `RunIndex.runs`, plus `pending_approvals` (how many requests wait);
    an unfinished run's row is refreshed from its latest checkpoint (which also updates the
    index) and names the steps it is executing. The orchestrator is closed afterwards. A SQLite
    database that does not exist has no runs (and is not created).
    """
    url = orch.checkpointer_url
    if url.startswith("sqlite:///") and not sqlite_path(url).exists():
        return []
    fresh: dict[str, tuple[list[str], int]] = {}
    async with orch:
        for row in orch.index.runs():
            if row["status"] is None or not WorkflowStatus(row["status"]).is_terminal:
                try:
                    run = await orch.status(row["run_id"])
                except RunNotFoundError:  # indexed before its first checkpoint landed
                    continue
                current = in_flight(run, await _values(orch, run.run_id))
                fresh[run.run_id] = (current, len(run.pending_approvals))
        rows = orch.index.runs(status=status, workflow_id=workflow_id)
    for row in rows:
        current, pending = fresh.get(row["run_id"], (row["current_steps"], 0))
        row["current_steps"], row["pending_approvals"] = current, pending
    return rows
