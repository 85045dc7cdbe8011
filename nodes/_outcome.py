"""`StepOutcome`: what running a step produced, and how it becomes a state update."""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nodes._hooks import RunHooks
from policies import redact_text
from state import StepResult, StepStatus


def utc_iso(epoch: float) -> str:
    """ISO-8601 UTC text of an epoch time."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def traceback_summary(exc: BaseException, limit: int = 4) -> str:
    """The last frames of a traceback, short enough for state and audit."""
    frames = tb.format_exception(type(exc), exc, exc.__traceback__, limit=-limit)
    return redact_text("".join(frames)[-2000:])


@dataclass
class StepOutcome:
    """The result of running one step (and, for containers, its children)."""

    step_id: str
    status: StepStatus
    output: Any = None
    attempts: int = 0
    started: float = 0.0
    finished: float = 0.0
    cpu_seconds: float = 0.0
    error: BaseException | None = None
    reason: str | None = None
    iterations: int | None = None
    context_updates: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    children: list[StepOutcome] = field(default_factory=list)
    record_output: bool = True
    step_type: str = ""
    output_bytes: int = 0
    failed_attempts: list[str] = field(default_factory=list)
    """Error types of the attempts that failed and were retried."""

    @property
    def ok(self) -> bool:
        """Completed, or skipped on purpose."""
        return self.status in (StepStatus.COMPLETED, StepStatus.SKIPPED)

    def result(self) -> StepResult:
        """The `StepResult` stored in state."""
        err = self.error
        return StepResult(
            step_id=self.step_id,
            status=self.status,
            attempts=self.attempts,
            started_at=utc_iso(self.started) if self.started else None,
            finished_at=utc_iso(self.finished) if self.finished else None,
            duration_seconds=round(max(0.0, self.finished - self.started), 6),
            cpu_seconds=round(self.cpu_seconds, 6),
            error_type=type(err).__name__ if err else None,
            # recorded messages leave the run (state, audit, --json): secrets are hidden here
            error=redact_text(str(err)) if err else None,
            traceback=traceback_summary(err) if err else None,
            reason=redact_text(self.reason) if self.reason else None,
            iterations=self.iterations,
        )

    def flatten(self) -> list[StepOutcome]:
        """This outcome and every nested child outcome."""
        out = [self]
        for child in self.children:
            out.extend(child.flatten())
        return out


def report(
    outcome: StepOutcome,
    hooks: RunHooks,
    *,
    workflow_id: str,
    run_id: str,
    unmetered: frozenset[str] = frozenset(),
) -> None:
    """Tell the hooks about `outcome` and every nested outcome (`metrics_enabled` is false
    for the steps in `unmetered`)."""
    for item in outcome.flatten():
        hooks.on_step(
            metrics_enabled=item.step_id not in unmetered,
            workflow_id=workflow_id,
            run_id=run_id,
            step_id=item.step_id,
            step_type=item.step_type,
            status=item.status.value,
            duration=max(0.0, item.finished - item.started),
            attempts=item.attempts,
            error_type=type(item.error).__name__ if item.error else None,
        )


def outcome_update(outcome: StepOutcome) -> dict[str, Any]:
    """The state update recording `outcome` and its children."""
    results: dict[str, Any] = {}
    step_results: dict[str, Any] = {}
    usage: dict[str, Any] = {}
    completed, failed, skipped = [], [], []
    retries: dict[str, int] = {}
    errors: dict[str, int] = {}
    context: dict[str, Any] = {}
    flags: list[str] = []
    stored = 0
    for item in outcome.flatten():
        sid = item.step_id
        step_results[sid] = item.result().model_dump(mode="json", exclude_none=True)
        usage[sid] = {
            "wall_seconds": step_results[sid]["duration_seconds"],
            "cpu_seconds": step_results[sid]["cpu_seconds"],
            "attempts": item.attempts,
        }
        if item.status is StepStatus.COMPLETED:
            completed.append(sid)
            if item.record_output:
                results[sid] = item.output
                stored += item.output_bytes
        elif item.status is StepStatus.FAILED:
            failed.append(sid)
        else:
            skipped.append(sid)
        final = [type(item.error).__name__] if item.error is not None else []
        for name in [*item.failed_attempts, *final]:  # every failed attempt counts
            errors[name] = errors.get(name, 0) + 1
        if item.attempts > 1:
            retries[sid] = item.attempts - 1
        flags.extend(item.flags)
    context.update(outcome.context_updates)
    update: dict[str, Any] = {"step_results": step_results, "resource_usage": usage}
    if results:
        update["intermediate_results"] = results
    if stored:
        update["stored_bytes"] = stored
    for key, ids in (
        ("completed_steps", completed),
        ("failed_steps", failed),
        ("skipped_steps", skipped),
    ):
        if ids:
            update[key] = ids
    if retries:
        update["retry_counts"] = retries
    if errors:
        update["error_counts"] = errors
    if context:
        update["context"] = context
    if flags:
        update["compliance_flags"] = sorted(set(flags))
    return update
