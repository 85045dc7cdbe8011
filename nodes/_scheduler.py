"""The scheduling rules, as a pure function of the definition and the finished steps.

A top-level step is ready when it has not finished and every step it waits for (its
dependencies, the conditional that routes to it, steps naming it in `next_steps`) is done,
with at least one of them completed; steps that wait for nothing are ready at once. A step
whose awaited steps all ended skipped is skipped too. Steps named only as error handlers
run when a failure calls them, never on their own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import repeat

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
        if step.router is not None:
            targets.extend(step.router.routes)
        for target in targets:
            if target in waits and target != step.step_id:
                waits[target].add(step.step_id)
    return {sid: tuple(sorted(deps)) for sid, deps in waits.items()}


def waits_for(workflow: AdvancedWorkflow) -> dict[str, tuple[str, ...]]:
    """`{step_id: steps it waits for}` of the top-level steps."""
    return _waits_for(workflow)


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


@dataclass(frozen=True, slots=True)
class _Index:
    """Lookups derived once per workflow, so a decision never walks every step in Python."""

    top: frozenset[str]
    position: dict[str, int]
    waits: dict[str, frozenset[str]]
    dependents: dict[str, tuple[str, ...]]
    roots: frozenset[str]


@per_workflow
def _index(workflow: AdvancedWorkflow) -> _Index:
    waits = _waits_for(workflow)
    dependents: dict[str, list[str]] = {sid: [] for sid in waits}
    for sid, deps in waits.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(sid)
    return _Index(
        top=frozenset(waits),
        position={str(s.step_id): i for i, s in enumerate(workflow.steps)},
        waits={sid: frozenset(deps) for sid, deps in waits.items()},
        dependents={sid: tuple(ids) for sid, ids in dependents.items()},
        roots=frozenset(sid for sid, deps in waits.items() if not deps),
    )


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

    The cost does not grow with the steps already finished beyond set operations: skipping
    follows only the dependents of skipped steps, and readiness is tested only for the
    steps not yet done.
    """
    index = _index(workflow)
    waits = _waits_for(workflow)
    handlers = handler_only(workflow) - set(triggered)
    done_ok, done_skip = set(completed), set(skipped) | set(handled)
    finished = done_ok | done_skip | set(failed)
    skip: dict[str, str] = {}
    # skipping one step can make the steps after it skippable: follow dependents only
    queue = deque(d for sid in done_skip for d in index.dependents.get(sid, ()))
    while queue:
        sid = queue.popleft()
        if sid in finished or sid in skip or sid in handlers or not index.waits[sid]:
            continue
        if all(d in done_skip or d in skip for d in index.waits[sid]):
            skip[sid] = f"every step it waits for was skipped ({', '.join(waits[sid])})"
            queue.extend(index.dependents.get(sid, ()))
    done = finished | skip.keys()
    busy = set(in_flight)
    left = index.top - done - handlers
    if len(left) > len(done):
        # late steps of a long run wait for done ones: look only at what done steps unblock
        # (set operations over a `map`, so no Python-level loop over every step)
        unblocked = index.roots.union(*map(index.dependents.get, done, repeat(())))
        candidates = unblocked & left
    else:
        candidates = left
    ready = sorted(
        (
            sid
            for sid in candidates - busy
            if index.waits[sid] <= done
            and (sid in index.roots or not index.waits[sid].isdisjoint(done_ok))
        ),
        key=index.position.__getitem__,
    )
    blocked: dict[str, list[str]] = {}
    if not ready and not busy:
        for sid in sorted(left, key=index.position.__getitem__):
            blocked[sid] = [d for d in waits[sid] if d not in done]
    return Plan(
        ready=ready[: workflow.max_parallel_steps] if cap else ready,
        skip=skip,
        complete=not left,
        blocked=blocked,
    )


@per_workflow
def _top(workflow: AdvancedWorkflow) -> frozenset[str]:
    return frozenset(s.step_id for s in workflow.steps)


def unhandled_failures(state: EnterpriseWorkflowState, workflow: AdvancedWorkflow) -> list[str]:
    """Top-level steps that failed and whose failure nothing has handled yet."""
    if not state.failed_steps:
        return []
    top = _top(workflow)
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
