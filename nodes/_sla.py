"""Service-level targets: did a step or a run take longer than its `sla_targets` allow?

Pure functions over durations find breaches; `announce` logs one and tells the hooks (audit
entry, breach metric). The nodes decide the rest: flag `sla_breached`, and fail the run when
the targets are enforced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from nodes._services import step_logger
from state import SlaTargets, WorkflowStep

SLA_FLAG = "sla_breached"
"""The compliance flag a breach raises."""


@dataclass(frozen=True, slots=True)
class SlaBreach:
    """A step or a run that took longer than its target."""

    step_id: str | None
    """The step that was too slow (None: the whole run)."""
    target_seconds: float
    """What the SLA allows."""
    actual_seconds: float
    """What it took."""
    enforced: bool
    """True when the SLA fails the run (`sla_targets.enforce`)."""

    @property
    def message(self) -> str:
        """What happened, the bad value, and the way out (for logs and `SlaBreachError`)."""
        what = f"step '{self.step_id}'" if self.step_id else "the run"
        where = f"sla_targets.steps.{self.step_id}" if self.step_id else "max_duration_seconds"
        then = (
            "enforce is on, so the run fails"
            if self.enforced
            else "flagged only (set enforce: true to fail runs that breach it)"
        )
        return (
            f"{what} took {self.actual_seconds:.3f}s, over its SLA of "
            f"{self.target_seconds:g}s ({where}); {then}"
        )

    def hook_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `RunHooks.on_sla_breach` (besides workflow and run ids)."""
        return asdict(self)


def step_targets(targets: SlaTargets, step: WorkflowStep) -> dict[str, Any] | None:
    """The targets a dispatched step needs, for its task: its own and its nested steps'.

    `{"steps": {step_id: max_seconds}, "enforce": bool}`, or None when none apply, so a task
    carries a few numbers at most and nothing that grows with the run.
    """
    ids = [step.step_id, *_nested_ids(step)]
    steps = {sid: targets.steps[sid] for sid in ids if sid in targets.steps}
    return {"steps": steps, "enforce": targets.enforce} if steps else None


def _nested_ids(step: WorkflowStep) -> Iterable[str]:
    for child in step.children:
        yield child.step_id
        yield from _nested_ids(child)


def step_breaches(
    sla: Mapping[str, Any] | None, durations: Iterable[tuple[str, float]]
) -> list[SlaBreach]:
    """Breaches among `(step_id, seconds)` pairs, given a task's `step_targets` value."""
    if not sla:
        return []
    steps: Mapping[str, float] = sla.get("steps") or {}
    enforced = bool(sla.get("enforce", False))
    return [
        SlaBreach(sid, float(steps[sid]), round(seconds, 6), enforced)
        for sid, seconds in durations
        if sid in steps and seconds > steps[sid]
    ]


def step_breach(targets: SlaTargets, step_id: str, duration: float) -> SlaBreach | None:
    """The breach of one step's target, or None when it met it (or has none)."""
    target = targets.steps.get(step_id)
    if target is None or duration <= target:
        return None
    return SlaBreach(step_id, target, round(duration, 6), targets.enforce)


def run_breach(targets: SlaTargets, duration: float) -> SlaBreach | None:
    """The breach of the run's `max_duration_seconds`, or None when it met it (or has none)."""
    target = targets.max_duration_seconds
    if target is None or duration <= target:
        return None
    return SlaBreach(None, target, round(duration, 6), targets.enforce)


class SlaListener(Protocol):
    """What `announce` tells: `RunHooks.on_sla_breach`."""

    def on_sla_breach(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str | None,
        target_seconds: float,
        actual_seconds: float,
        enforced: bool,
        **_: Any,
    ) -> None:
        """A step (or, with `step_id` None, the run) took longer than its target."""


def announce(breach: SlaBreach, hooks: SlaListener, *, workflow_id: str, run_id: str) -> None:
    """Log the breach as a warning and tell the hooks (audit entry, breach metric)."""
    log = step_logger(workflow_id=workflow_id, run_id=run_id, step_id=breach.step_id)
    log.warning("sla_breached", **breach.hook_kwargs())
    hooks.on_sla_breach(workflow_id=workflow_id, run_id=run_id, **breach.hook_kwargs())
