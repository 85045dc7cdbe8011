"""Crafted run histories for optimizer tests (plain dicts shaped like a run's state)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 1, 1, tzinfo=UTC)


def crafted_run(
    durations: dict[str, float],
    *,
    makespan: float | None = None,
    status: str = "completed",
    results: dict[str, dict[str, Any]] | None = None,
    outputs: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A finished run: each step completed in `durations[step]` seconds unless `results`
    overrides its result fields; the run lasted `makespan` (default: the sum)."""
    total = sum(durations.values()) if makespan is None else makespan
    step_results = {
        sid: {"step_id": sid, "status": "completed", "duration_seconds": d, "attempts": 1}
        for sid, d in durations.items()
    }
    for sid, fields in (results or {}).items():
        step_results[sid] = {**step_results.get(sid, {"step_id": sid}), **fields}
    return {
        "status": status,
        "started_at": START.isoformat(),
        "finished_at": (START + timedelta(seconds=total)).isoformat(),
        "step_results": step_results,
        "intermediate_results": outputs or {},
        "context": context or {},
        "error": error,
        **extra,
    }
