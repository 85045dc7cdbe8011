"""The incremental scheduler: the same plans as the rules computed from scratch, at a cost
that does not grow with the steps already finished."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes._scheduler import Planner, handler_only, plan, waits_for
from orchestrator import ActionRegistry, RunHooks
from state import AdvancedWorkflow, WorkflowStatus


def _chain(n: int) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "chain",
            "steps": [
                {"step_id": f"s{i}", "action": "noop", "dependencies": [f"s{i - 1}"] if i else []}
                for i in range(n)
            ],
        }
    )


def _reference(
    workflow: AdvancedWorkflow,
    completed: list[str],
    failed: list[str],
    skipped: list[str],
    handled: list[str],
) -> tuple[list[str], set[str], bool]:
    """The scheduling rules (module docstring of `nodes/_scheduler.py`) from scratch."""
    waits = waits_for(workflow)
    handlers = handler_only(workflow)
    ok, skip_done = set(completed), set(skipped) | set(handled)
    finished = ok | skip_done | set(failed)
    skip: set[str] = set()
    changed = True
    while changed:
        changed = False
        for sid, deps in waits.items():
            if sid in finished or sid in skip or not deps:
                continue
            if all(d in skip_done or d in skip for d in deps):
                skip.add(sid)
                changed = True
    done = finished | skip
    left = [s.step_id for s in workflow.steps if s.step_id not in done | handlers]
    ready = [
        sid
        for sid in left
        if all(d in done for d in waits[sid]) and (not waits[sid] or set(waits[sid]) & ok)
    ]
    return ready, skip, not left


@st.composite
def _runs(draw: st.DrawFn) -> tuple[AdvancedWorkflow, list[tuple[str, str]], list[int]]:
    """A random DAG, a random history of finished steps and the batches it is fed in."""
    n = draw(st.integers(min_value=1, max_value=12))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.integers(min_value=0, max_value=max(0, i - 1)), max_size=3))
        steps.append(
            {
                "step_id": f"s{i}",
                "action": "noop",
                "dependencies": sorted({f"s{d}" for d in deps}) if i else [],
            }
        )
    workflow = AdvancedWorkflow.from_dict({"name": "random", "steps": steps})
    order = draw(st.permutations([f"s{i}" for i in range(n)]))
    kinds = st.sampled_from(["completed", "completed", "failed", "skipped", "handled"])
    history = [(sid, draw(kinds)) for sid in order[: draw(st.integers(0, n))]]
    cuts = draw(st.lists(st.integers(0, len(history)), max_size=4))
    return workflow, history, sorted(cuts)


@settings(max_examples=300, deadline=None)
@given(_runs())
def test_incremental_plans_equal_the_rules_from_scratch(
    run: tuple[AdvancedWorkflow, list[tuple[str, str]], list[int]],
) -> None:
    """Fed the history in any batches, a run's cached planner decides as the rules do."""
    workflow, history, cuts = run
    key = f"prop-{id(run)}"
    for cut in [*cuts, len(history)]:
        lists: dict[str, list[str]] = {"completed": [], "failed": [], "skipped": [], "handled": []}
        for sid, kind in history[:cut]:
            lists[kind].append(sid)
        decision = plan(workflow, **lists, cap=False, run=key)
        ready, skip, complete = _reference(workflow, **lists)
        assert (decision.ready, set(decision.skip), decision.complete) == (ready, skip, complete)


def test_decision_work_does_not_grow_with_finished_steps() -> None:
    """In a 3,000-step chain, decision 2,900 looks at as many steps as decision 100."""
    workflow = _chain(3000)
    completed: list[str] = []
    work = []
    for i in range(3000):
        work.append(plan(workflow, completed=completed, failed=[], skipped=[], run="flat").work)
        completed = [*completed, f"s{i}"]  # a new list each time, as the reducer builds
    assert work[100] == work[2900] <= 5
    assert max(work[1:]) == work[100]


def test_a_rebuilt_planner_pays_for_the_whole_history_once() -> None:
    """Without the run's planner (a new process) the first decision feeds every finished id."""
    workflow = _chain(500)
    completed = [f"s{i}" for i in range(400)]
    fresh = plan(workflow, completed=completed, failed=[], skipped=[], run="rebuilt")
    again = plan(workflow, completed=[*completed, "s400"], failed=[], skipped=[], run="rebuilt")
    assert fresh.ready == ["s400"]
    assert again.ready == ["s401"]
    assert fresh.work > 400 > again.work


def test_another_history_of_the_same_run_never_gets_the_cached_plan() -> None:
    """After time travel to an earlier checkpoint and a different branch, the plan is rebuilt."""
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "diamond",
            "steps": [
                {"step_id": "a", "action": "noop"},
                {"step_id": "b", "action": "noop", "dependencies": ["a"]},
                {"step_id": "c", "action": "noop", "dependencies": ["a"]},
                {"step_id": "d", "action": "noop", "dependencies": ["b", "c"]},
            ],
        }
    )
    first = plan(workflow, completed=["a", "b"], failed=[], skipped=[], run="travel")
    assert first.ready == ["c"]
    # back to "a" only, then "c" completed and "b" skipped: same length, other content
    other = plan(workflow, completed=["a", "c"], failed=[], skipped=["b"], run="travel")
    assert other.ready == ["d"]
    earlier = plan(workflow, completed=["a"], failed=[], skipped=[], run="travel")
    assert earlier.ready == ["b", "c"]


def test_planner_fed_out_of_order_skips_only_unfinished_steps() -> None:
    """A step finishing in the same batch as the skip that would reach it is not skipped."""
    workflow = _chain(3)
    planner = Planner(workflow)
    planner.add(skipped=["s0"], completed=["s1"])
    decision = planner.decide()
    assert decision.skip == {}
    assert decision.ready == ["s2"]


class _Decisions(RunHooks):
    """Records the scheduler's work per decision of a real run."""

    def __init__(self) -> None:
        self.work: list[int] = []

    def on_decision(self, *, work: int = -1, **_: Any) -> None:
        self.work.append(work)


async def test_real_run_decisions_cost_the_same_early_and_late(make_orch: Any) -> None:
    """A 400-step chain run by the orchestrator: its late decisions look at no more steps
    than its early ones."""
    registry = ActionRegistry()

    @registry.action("noop")
    async def noop() -> dict[str, Any]:
        return {}

    decisions = _Decisions()
    orch = make_orch(registry, hooks=[decisions])
    run = await orch.execute_workflow(_chain(400), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert len(decisions.work) == 400
    assert max(decisions.work[300:]) <= max(decisions.work[1:100]) <= 5


def test_a_step_reported_skipped_that_then_completes_unblocks_its_dependents() -> None:
    """A derived skip withdrawn by a later completion is no longer passed on downstream."""
    workflow = _chain(3)
    first = plan(workflow, completed=[], failed=[], skipped=["s0"], run="withdrawn")
    assert set(first.skip) == {"s1", "s2"}
    later = plan(workflow, completed=["s1"], failed=[], skipped=["s0"], run="withdrawn")
    assert later.skip == {}
    assert later.ready == ["s2"]


async def test_a_run_keeps_no_planner_once_its_drive_ends(make_orch: Any) -> None:
    """A finished (or parked) run's planner, and the id lists it holds, leave the cache."""
    from nodes import _scheduler

    registry = ActionRegistry()

    @registry.action("noop")
    async def noop() -> dict[str, Any]:
        return {}

    seen: list[int] = []

    class _Cached(RunHooks):
        def on_decision(self, **_: Any) -> None:
            seen.append(sum(key[0] == "kept" for key in _scheduler._PLANNERS))

    orch = make_orch(registry, hooks=[_Cached()])
    run = await orch.execute_workflow(_chain(20), {}, run_id="kept")
    assert run.status is WorkflowStatus.COMPLETED
    assert max(seen) == 1  # cached while the run is driven
    assert not [key for key in _scheduler._PLANNERS if key[0] == "kept"]
