"""The scheduling rules, as a pure function of the definition and the finished steps.

A top-level step is ready when it has not finished and every step it waits for (its
dependencies, the conditional that routes to it, steps naming it in `next_steps`) is done,
with at least one of them completed; steps that wait for nothing are ready at once. A step
whose awaited steps all ended skipped is skipped too. Steps named only as error handlers
run when a failure calls them, never on their own.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from nodes._definition import per_workflow
from state import AdvancedWorkflow, EnterpriseWorkflowState, StepType


@dataclass(frozen=True, slots=True)
class Plan:
    """What the orchestrator should do next."""

    ready: list[str] = field(default_factory=list)
    """Steps to dispatch now (capped by `max_parallel_steps`)."""
    skip: dict[str, str] = field(default_factory=dict)
    """`{step_id: reason}` of steps that became skipped."""
    complete: bool = False
    """Every top-level step is done."""
    blocked: dict[str, list[str]] = field(default_factory=dict)
    """`{step_id: [awaited steps not done]}` when nothing is ready and steps are left."""

    @property
    def deadlocked(self) -> bool:
        """Nothing can run yet steps are left."""
        return not self.ready and not self.complete and bool(self.blocked)


@per_workflow
def _waits_for(workflow: AdvancedWorkflow) -> dict[str, tuple[str, ...]]:
    waits: dict[str, set[str]] = {s.step_id: set(s.dependencies) for s in workflow.steps}
    for step in workflow.steps:
        targets = list(step.next_steps)
        for rule in step.conditions:
            targets.extend(rule.targets)
        for target in targets:
            if target in waits and target != step.step_id:
                waits[target].add(step.step_id)
    return {sid: tuple(sorted(deps)) for sid, deps in waits.items()}


@per_workflow
def handler_only(workflow: AdvancedWorkflow) -> frozenset[str]:
    """Steps that run only when a failure calls them."""
    handlers = {h for s in workflow.iter_steps() for h in s.error_handlers}
    rejects = {
        s.approval.on_reject
        for s in workflow.steps
        if s.approval is not None and s.approval.on_reject
    }
    waits = _waits_for(workflow)
    return frozenset(h for h in handlers | rejects if not waits.get(h))


@per_workflow
def _order(workflow: AdvancedWorkflow) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Top-level steps in definition order with what each waits for."""
    waits = _waits_for(workflow)
    return tuple((str(s.step_id), waits[str(s.step_id)]) for s in workflow.steps)


def plan(
    workflow: AdvancedWorkflow,
    *,
    completed: Collection[str],
    failed: Collection[str],
    skipped: Collection[str],
    in_flight: Collection[str] = (),
    triggered: Collection[str] = (),
    handled: Collection[str] = (),
    cap: bool = True,
) -> Plan:
    """Decide the next steps from what has finished.

    `triggered` handler steps become runnable; `handled` failures count as skipped. With
    `cap`, at most `max_parallel_steps` steps are dispatched at once; without it every ready
    step is, and the caller caps concurrency (LangGraph's `max_concurrency`).

    One pass over the steps per decision, and the work a decision rarely needs (skipping,
    the blocked report) only when it can apply.
    """
    order = _order(workflow)
    handlers = handler_only(workflow)
    if triggered:
        handlers = handlers - set(triggered)
    done_ok = set(completed)
    done_skip = set(skipped) | set(handled) if skipped or handled else set()
    finished = done_ok | done_skip
    if failed:
        finished |= set(failed)
    skip: dict[str, str] = {}
    changed = bool(done_skip)  # a step is skipped only when what it waits for was skipped
    while changed:  # skipping one step can make the steps after it skippable
        changed = False
        for sid, deps in order:
            if sid in finished or sid in skip or not deps or sid in handlers:
                continue
            if all(d in done_skip or d in skip for d in deps):
                skip[sid] = f"every step it waits for was skipped ({', '.join(deps)})"
                changed = True
    done = finished | skip.keys() if skip else finished
    busy = set(in_flight) if in_flight else ()
    ready: list[str] = []
    waiting = 0
    running = False
    for sid, deps in order:
        if sid in done or sid in handlers:
            continue
        if sid in busy:
            running = True
            continue
        for dep in deps:  # a plain loop: no call per step, the common case is "waiting"
            if dep not in done:
                break
        else:
            if not deps or not done_ok.isdisjoint(deps):
                ready.append(sid)
                continue
        waiting += 1
    blocked: dict[str, list[str]] = {}
    if waiting and not ready and not busy:  # the deadlock report: who waits for what
        blocked = {
            sid: [d for d in deps if d not in done]
            for sid, deps in order
            if sid not in done and sid not in handlers
        }
    return Plan(
        ready=ready[: workflow.max_parallel_steps] if cap else ready,
        skip=skip,
        complete=not ready and not waiting and not running,
        blocked=blocked,
    )


def unhandled_failures(state: EnterpriseWorkflowState, workflow: AdvancedWorkflow) -> list[str]:
    """Top-level steps that failed and whose failure nothing has handled yet."""
    top = {s.step_id for s in workflow.steps}
    handled = set(state.handled_failures)
    return [sid for sid in state.failed_steps if sid in top and sid not in handled]


def node_for(step_type: StepType) -> str:
    """The graph node that runs a step of this type."""
    return _NODE_FOR.get(step_type, "parallel_executor")


_NODE_FOR = {
    StepType.CONDITIONAL: "conditional_router",
    StepType.REACT: "react_agent",
    StepType.HUMAN_APPROVAL: "human_approval",
}
