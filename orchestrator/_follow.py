"""`run WORKFLOW --follow`: print a run's step events as they happen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from orchestrator._run import RunResult

if TYPE_CHECKING:
    from orchestrator._facade import EnterpriseWorkflowOrchestrator


def event_line(event: Mapping[str, Any]) -> str | None:
    """One line for a step event (None for events not worth a line)."""
    kind, step = event.get("event"), event.get("step_id")
    typ = f" ({event['step_type']})" if event.get("step_type") else ""
    took = f" in {event['duration']:.3f}s" if "duration" in event else ""
    if kind == "step_started":
        return f"  started    {step}{typ}"
    if kind == "step_completed":
        tries = f" after {event['attempts']} attempts" if event.get("attempts", 1) > 1 else ""
        return f"  completed  {step}{took}{tries}"
    if kind == "step_failed":
        return f"  failed     {step}{took}: {event.get('error_type', 'error')}"
    if kind == "step_skipped":
        return f"  skipped    {step}"
    if kind == "step_retry":
        return (
            f"  retrying   {step}: attempt {event['attempt']} failed ({event['error']}), "
            f"next in {event['delay']:.2f}s"
        )
    if kind == "step_waiting":
        need = event.get("min_approvals", 1)
        return (
            f"  waiting    {step} for {need} approval{'s' if need != 1 else ''} by one of: "
            f"{', '.join(event.get('approvers', []))}"
        )
    if kind == "route":
        targets = ", ".join(event.get("targets") or []) or "nothing"
        return f"  routed     {step} -> {targets} ({event.get('matched')})"
    if kind == "run_finished":
        return f"  finished   {event['status']}{took}"
    return None


async def follow_run(
    orch: EnterpriseWorkflowOrchestrator,
    workflow: Any,
    data: Mapping[str, Any],
    *,
    run_id: str | None,
    out: IO[str],
) -> RunResult:
    """Start a run, print its events to `out` live, and return where it stopped."""
    final: dict[str, Any] = {}
    async for event in orch.astream(workflow, data, run_id=run_id):
        if event.get("event") == "run_result":
            final = event
        elif (line := event_line(event)) is not None:
            print(line, file=out, flush=True)
    return await orch.status(final["run_id"])
