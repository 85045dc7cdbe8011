"""`LiveSteps`: what the steps of this process's runs are doing right now.

Checkpoints show a step `running` from its dispatch until its result, but a lone step runs
inside the scheduler's superstep and a retry happens inside a node, so neither is in any
checkpoint while it lasts. These hooks keep that in memory, and `status()` overlays it on
the checkpoint's `step_results` (in the executing process).
"""

from __future__ import annotations

import threading
from typing import Any

from nodes import RunHooks
from nodes._dag import finished_in_flight
from state import StepStatus


class LiveSteps(RunHooks):
    """`{run_id: {step_id: running | retrying}}` of steps executing in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, str]] = {}

    def _set(self, run_id: str, step_id: str, status: StepStatus) -> None:
        with self._lock:
            self._runs.setdefault(run_id, {})[step_id] = status.value

    def on_step_started(self, *, run_id: str, step_id: str, **_: Any) -> None:
        """The step is running."""
        self._set(run_id, step_id, StepStatus.RUNNING)

    def on_step_retry(self, *, run_id: str, step_id: str, **_: Any) -> None:
        """The step failed an attempt and waits to try again."""
        self._set(run_id, step_id, StepStatus.RETRYING)

    def on_step(self, *, run_id: str, step_id: str, **_: Any) -> None:
        """The step finished: its checkpointed result speaks for it."""
        with self._lock:
            self._runs.get(run_id, {}).pop(step_id, None)

    def on_run_finished(self, *, run_id: str, **_: Any) -> None:
        """Forget the run."""
        with self._lock:
            self._runs.pop(run_id, None)

    def overlay(self, run_id: str, step_results: dict[str, Any]) -> dict[str, Any]:
        """`step_results` with the live status of steps not finished in the checkpoint."""
        with self._lock:
            live = dict(self._runs.get(run_id, {}))
        if not live:
            return step_results
        finished = {StepStatus.COMPLETED.value, StepStatus.FAILED.value, StepStatus.SKIPPED.value}
        merged = dict(step_results)
        for sid, status in live.items():
            current = merged.get(sid, {})
            if current.get("status") not in finished:
                merged[sid] = {**current, "step_id": sid, "status": status}
        return merged


def with_steps_in_flight(values: dict[str, Any], pending_writes: Any) -> dict[str, Any]:
    """State `values` with the steps that a DAG task finished while its superstep still runs
    (saved as the superstep's pending writes, not yet in the checkpoint's values): a dict
    field takes the step's entries, a list field its new ids."""
    updates = finished_in_flight(pending_writes)
    if not updates:
        return values
    merged = dict(values)
    for update in updates:
        for key, value in update.items():
            old = merged.get(key)
            if isinstance(old, dict) and isinstance(value, dict):
                merged[key] = {**old, **value}
            elif isinstance(old, list) and isinstance(value, list):
                merged[key] = old + [v for v in value if v not in old]
    return merged
