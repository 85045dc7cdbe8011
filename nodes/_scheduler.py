"""The scheduling rules, as a pure function of the definition and the finished steps.

A top-level step is ready when it has not finished and every step it waits for (its
dependencies, the conditional that routes to it, steps naming it in `next_steps`) is done,
with at least one of them completed; steps that wait for nothing are ready at once. A step
whose awaited steps all ended skipped is skipped too. Steps named only as error handlers
run when a failure calls them, never on their own.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from threading import Lock

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
    work: int = 0
    """Steps and dependency edges the scheduler looked at for this decision: it grows with
    what finished since the previous decision of the run, not with the run's length."""

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


class Planner:
    """The scheduling rules of one run, kept up to date from the steps that finished since
    the last decision.

    Per top-level step it counts the awaited steps not yet done, the completed ones and the
    skipped ones, and it keeps the set of ready steps and of steps that became skipped: a
    finished step updates only its dependents, so a decision costs what changed since the
    previous one plus the ready frontier, never the steps finished before. The state is a
    function of the *sets* of finished ids only, so feeding ids in any order or batching
    gives the same plan as `plan` computed from scratch.

        planner = Planner(workflow)
        planner.add(completed=["extract"])
        planner.decide().ready  # ['transform']
    """

    def __init__(self, workflow: AdvancedWorkflow) -> None:
        index = _index(workflow)
        self._workflow = workflow
        self._index = index
        self._handlers = set(handler_only(workflow))
        self._ok: set[str] = set()
        self._skipish: set[str] = set()
        self._finished: set[str] = set()
        self._done: set[str] = set()
        self._derived: set[str] = set()
        self._remaining = {sid: len(deps) for sid, deps in index.waits.items()}
        self._ok_waits = dict.fromkeys(index.waits, 0)
        self._skip_waits = dict.fromkeys(index.waits, 0)
        self._ready: set[str] = set(index.roots)
        self._undone = len(index.top)
        self.seen: tuple[Sequence[str], ...] = ()
        """The id lists (completed, failed, skipped, handled, triggered) fed so far."""
        self.lengths: tuple[int, ...] = ()
        """Their lengths when fed."""
        self.work = 0
        """Steps and dependency edges looked at since the last decision (reset by
        `decide`): what the decision cost, independent of the steps finished before."""

    @property
    def workflow(self) -> AdvancedWorkflow:
        """The workflow this planner schedules."""
        return self._workflow

    def add(
        self,
        *,
        completed: Iterable[str] = (),
        failed: Iterable[str] = (),
        skipped: Iterable[str] = (),
        handled: Iterable[str] = (),
        triggered: Iterable[str] = (),
    ) -> None:
        """Take in ids that finished (or handler steps that were triggered) since the last
        call; ids already known are ignored."""
        for sid in triggered:
            self.work += 1
            self._handlers.discard(sid)
        completed, failed, skipped = tuple(completed), tuple(failed), (*skipped, *handled)
        fresh_ok = [s for s in completed if s not in self._ok]
        fresh_skip = [s for s in skipped if s not in self._skipish]
        self._ok.update(fresh_ok)
        # every id of the batch counts as finished before any skip is derived, so a step
        # finishing in this batch is never also reported skipped
        newly_finished = [s for s in (*completed, *skipped, *failed) if s not in self._finished]
        self._finished.update(newly_finished)
        self.work += len(fresh_ok) + len(fresh_skip) + len(newly_finished)
        was_derived = [s for s in newly_finished if s in self._derived]
        self._derived.difference_update(newly_finished)
        if was_derived:
            # a step reported skipped that then completed or failed was never skipped after all
            skipped_now = set(skipped)
            for sid in was_derived:
                if sid not in skipped_now:
                    self._unskip(sid)
        dependents = self._index.dependents
        for sid in fresh_ok:
            for dep in dependents.get(sid, ()):
                self.work += 1
                self._ok_waits[dep] += 1
                self._check(dep)
        for sid in newly_finished:
            self._settle(sid)
        queue = deque(fresh_skip)
        self._skipish.update(fresh_skip)
        while queue:
            sid = queue.popleft()
            for dep in dependents.get(sid, ()):
                self.work += 1
                self._skip_waits[dep] += 1
                if (
                    self._skip_waits[dep] == len(self._index.waits[dep])
                    and dep not in self._finished
                    and dep not in self._skipish
                ):
                    # every step it waits for was skipped: it is skipped too
                    self._skipish.add(dep)
                    self._derived.add(dep)
                    self._settle(dep)
                    queue.append(dep)

    def _unskip(self, sid: str) -> None:
        """`sid` is no longer skipped: steps skipped only because of it are not either."""
        self._skipish.discard(sid)
        stack = [sid]
        while stack:
            for dep in self._index.dependents.get(stack.pop(), ()):
                self.work += 1
                self._skip_waits[dep] -= 1
                if dep in self._derived:
                    self._derived.discard(dep)
                    self._skipish.discard(dep)
                    self._done.discard(dep)
                    if dep in self._index.top:
                        self._undone += 1
                    for after in self._index.dependents.get(dep, ()):
                        self.work += 1
                        self._remaining[after] += 1
                        self._ready.discard(after)
                    self._check(dep)
                    stack.append(dep)

    def _settle(self, sid: str) -> None:
        """`sid` is done (finished or derived skipped): its dependents wait for one less."""
        if sid in self._done:
            return
        self._done.add(sid)
        self._ready.discard(sid)
        if sid in self._index.top:
            self._undone -= 1
        for dep in self._index.dependents.get(sid, ()):
            self.work += 1
            self._remaining[dep] -= 1
            self._check(dep)

    def _check(self, sid: str) -> None:
        if sid not in self._done and self._remaining[sid] == 0 and self._ok_waits[sid] > 0:
            self._ready.add(sid)

    def decide(self, *, in_flight: Collection[str] = (), cap: bool = True) -> Plan:
        """The plan from everything added so far (see `plan`)."""
        index = self._index
        handlers_left = [h for h in self._handlers if h not in self._done and h in index.top]
        self.work += len(self._ready) + len(handlers_left) + len(self._derived)
        busy = set(in_flight)
        ready = sorted(
            (s for s in self._ready if s not in busy and s not in self._handlers),
            key=index.position.__getitem__,
        )
        left = self._undone - len(handlers_left)
        waits = _waits_for(self._workflow)
        blocked: dict[str, list[str]] = {}
        if not ready and not busy and left:
            # the run ends here (deadlock): listing every step left is affordable once
            for sid in sorted(
                index.top - self._done - self._handlers, key=index.position.__getitem__
            ):
                blocked[sid] = [d for d in waits[sid] if d not in self._done]
        skip = {
            sid: f"every step it waits for was skipped ({', '.join(waits[sid])})"
            for sid in sorted(self._derived, key=index.position.__getitem__)
        }
        work, self.work = self.work, 0
        return Plan(
            ready=ready[: self._workflow.max_parallel_steps] if cap else ready,
            skip=skip,
            complete=not left,
            blocked=blocked,
            work=work,
        )


def plan(
    workflow: AdvancedWorkflow,
    *,
    completed: Sequence[str],
    failed: Sequence[str],
    skipped: Sequence[str],
    in_flight: Collection[str] = (),
    triggered: Sequence[str] = (),
    handled: Sequence[str] = (),
    cap: bool = True,
    run: str | None = None,
) -> Plan:
    """Decide the next steps from what has finished.

    `triggered` handler steps become runnable; `handled` failures count as skipped. With
    `cap`, at most `max_parallel_steps` steps are dispatched at once; without it every ready
    step is, and the caller caps concurrency (LangGraph's `max_concurrency`).

    With `run` (a key naming the run, such as its thread id), the `Planner` of the previous
    decision of that run and workflow is reused when the lists given extend the ones it was
    fed (checked by content, so a rollback, time travel or another process never gets a
    stale plan): the decision then costs only the ids added since. Otherwise, or when a list
    is not an extension, the planner is built from the lists (cost linear in the run).
    """
    lists = tuple(
        ids if isinstance(ids, list | tuple) else tuple(ids)
        for ids in (completed, failed, skipped, handled, triggered)
    )
    planner = _cached(run, workflow, lists) if run is not None else None
    if planner is None:
        planner = Planner(workflow)
        new = lists
    else:
        new = tuple(now[n:] for now, n in zip(lists, planner.lengths, strict=True))
    planner.add(completed=new[0], failed=new[1], skipped=new[2], handled=new[3], triggered=new[4])
    planner.seen, planner.lengths = lists, tuple(map(len, lists))
    decision = planner.decide(in_flight=in_flight, cap=cap)
    if run is not None:
        with _LOCK:
            _PLANNERS[(run, id(workflow))] = planner
            _PLANNERS.move_to_end((run, id(workflow)))
            if len(_PLANNERS) > _MAX_RUNS:
                _PLANNERS.popitem(last=False)
    return decision


_PLANNERS: OrderedDict[tuple[str, int], Planner] = OrderedDict()
"""The planner of each run's last decision (least recently used dropped first)."""
_MAX_RUNS = 128
_LOCK = Lock()


def forget_plans(run: str) -> None:
    """Drop the cached planners of `run` (its drive in this process ended: a parked or
    finished run must not keep its plan, or the id lists it holds, in memory)."""
    with _LOCK:
        for key in [key for key in _PLANNERS if key[0] == run]:
            del _PLANNERS[key]


def _cached(
    run: str, workflow: AdvancedWorkflow, lists: tuple[Sequence[str], ...]
) -> Planner | None:
    """The run's planner, taken out of the cache, if every list extends what it was fed.

    The check compares each list's prefix with the list seen last (a C-level comparison that
    is almost free when nothing changed: the same object). Lists are never changed in place
    (state containers are immutable by convention, see NOTES), so equal prefixes mean the
    planner's sets are exactly the sets of these lists' first ids.
    """
    with _LOCK:
        planner = _PLANNERS.pop((run, id(workflow)), None)
    if planner is None or planner.workflow is not workflow:
        return None
    for now, seen, n in zip(lists, planner.seen, planner.lengths, strict=True):
        if now is seen and len(now) == n:
            continue  # the same list, unchanged: nothing to compare
        if len(now) < n or len(seen) != n or now[:n] != seen:
            return None  # another history (rollback, time travel): start again
    return planner


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
