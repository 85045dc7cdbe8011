"""`analyze_workflow_performance`: metrics from real runs and from crafted histories."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FakeClock
from history import crafted_run

from orchestrator import ActionRegistry, StepContext, WorkflowOptimizer
from orchestrator.optimizer._analysis import optimization_score
from state import AdvancedWorkflow, WorkflowStatus

SHOP = AdvancedWorkflow.from_dict(
    {
        "name": "shop",
        "retry_policy": {"max_attempts": 3, "initial_delay": 0, "jitter": 0},
        "steps": [
            {"step_id": "fetch", "action": "flaky", "output_mapping": {"item": "@"}},
            {
                "step_id": "charge",
                "action": "charge",
                "dependencies": ["fetch"],
                "continue_on_failure": True,
                "retry_policy": {"max_attempts": 1},
                "input_mapping": {"item": "context.item", "fail": "input.fail"},
            },
            {"step_id": "slow", "action": "slow", "dependencies": ["charge"], "timeout": 10},
        ],
    }
)

FOUR = AdvancedWorkflow.from_dict(
    {"name": "four", "steps": [{"step_id": s, "action": "x"} for s in "abcde"]}
)


def _registry(clock: FakeClock) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("flaky")
    async def flaky(ctx: StepContext) -> dict[str, str]:
        if ctx.attempt == 1:
            raise ConnectionError("first attempt always drops")
        return {"sku": "A-1"}

    @registry.action("charge")
    async def charge(item: dict[str, str], fail: bool) -> dict[str, bool]:
        if fail:
            raise ValueError(f"card declined for {item['sku']}")
        return {"charged": True}

    @registry.action("slow")
    async def slow() -> dict[str, bool]:
        clock.advance(9.0)
        return {"done": True}

    return registry


@pytest.fixture
async def shop_runs(make_orch: Any) -> WorkflowOptimizer:
    """Five real runs of `shop` (two with a tolerated failure); the optimizer on their db."""
    clock = FakeClock()
    orch = make_orch(_registry(clock), clock=clock)
    for fail in (True, False, True, False, False):
        run = await orch.execute_workflow(SHOP, {"fail": fail})
        assert run.status is WorkflowStatus.COMPLETED, run.error
    return WorkflowOptimizer(orch)


async def test_run_level_metrics_come_from_the_database(shop_runs: WorkflowOptimizer) -> None:
    """Runs, success and error rates and the mean makespan (injected clock)."""
    m = await shop_runs.analyze_workflow_performance(SHOP)
    assert (m.workflow_id, m.version, m.runs) == ("shop", "1.0", 5)
    assert (m.success_rate, m.error_rate, m.by_status) == (1.0, 0.0, {"completed": 5})
    # `slow` (9 s) runs only when `charge` succeeded: three runs of 9 s, two of 0 s
    assert m.average_execution_time == pytest.approx(5.4)


async def test_step_performance_counts_retries_and_handled_failures(
    shop_runs: WorkflowOptimizer,
) -> None:
    """Retried attempts and failures tolerated by continue_on_failure are told apart."""
    steps = (await shop_runs.analyze_workflow_performance(SHOP)).step_performance
    assert list(steps) == ["fetch", "charge", "slow"]
    assert (steps["fetch"].retry_rate, steps["fetch"].mean_attempts) == (1.0, 2.0)
    assert steps["fetch"].max_successful_attempt == 2
    charge = steps["charge"]
    assert (charge.failure_rate, charge.handled_failure_rate) == (0.0, 0.4)
    slow = steps["slow"]
    assert (slow.executed, slow.skip_rate, slow.mean_seconds, slow.p95_seconds) == (
        3,
        0.4,
        9.0,
        9.0,
    )
    assert slow.expected_seconds == pytest.approx(5.4)


async def test_other_versions_are_not_mixed_in(shop_runs: WorkflowOptimizer) -> None:
    """Runs of version 1.0 say nothing about version 2.0: empty metrics with a note."""
    v2 = AdvancedWorkflow.from_dict({**SHOP.to_data(), "version": "2.0"})
    m = await shop_runs.analyze_workflow_performance(v2)
    assert (m.runs, m.step_performance, m.optimization_score) == (0, {}, 0.0)
    assert "at least 2 are needed" in m.notes[0]


async def test_workflow_id_reads_the_newest_definition(shop_runs: WorkflowOptimizer) -> None:
    """A workflow id stands for the definition its newest run used."""
    m = await shop_runs.analyze_workflow_performance("shop")
    assert (m.workflow_id, m.runs) == ("shop", 5)


def test_single_run_gives_empty_metrics_with_a_note() -> None:
    """Fewer than two runs: no statistics, and a note saying why."""
    opt = WorkflowOptimizer(checkpointer="memory")
    m = _sync(opt.analyze_workflow_performance(FOUR, history=[crafted_run({"a": 1.0})]))
    assert (m.runs, m.bottlenecks, m.notes[0][:1]) == (1, [], "1")


def _sync(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


async def test_slow_step_is_a_bottleneck() -> None:
    """A mean above the mean of means plus one standard deviation is `slow`."""
    runs = [crafted_run({"a": 1.0, "b": 1.0, "c": 1.0, "d": 10.0}) for _ in range(3)]
    m = await WorkflowOptimizer(checkpointer="memory").analyze_workflow_performance(
        FOUR, history=runs
    )
    assert [(b.step_id, b.reasons) for b in m.bottlenecks] == [("d", ["slow"])]


async def test_variable_step_is_a_bottleneck() -> None:
    """A variance above half the mean is `variable`, even when the mean is unremarkable."""
    runs = [crafted_run({"a": 1.0, "b": 1.0, "e": t}) for t in (0.1, 1.5)]
    m = await WorkflowOptimizer(checkpointer="memory").analyze_workflow_performance(
        FOUR, history=runs
    )
    assert [(b.step_id, b.reasons) for b in m.bottlenecks] == [("e", ["variable"])]
    assert m.step_performance["e"].variance == pytest.approx(0.49)


async def test_a_rejection_is_a_business_outcome_not_an_error() -> None:
    """A run ended by a rejected approval is not an error, and the step is not failing."""
    rejected = {"status": "failed", "error_type": "ApprovalRejectedError", "attempts": 1}
    error = {"step_id": "b", "error_type": "ApprovalRejectedError", "message": "no"}
    runs = [
        crafted_run({"a": 1.0, "b": 0.0}),
        crafted_run({"a": 1.0, "b": 0.0}, status="failed", results={"b": rejected}, error=error),
    ]
    m = await WorkflowOptimizer(checkpointer="memory").analyze_workflow_performance(
        FOUR, history=runs
    )
    assert (m.error_rate, m.business_outcome_rate, m.success_rate) == (0.0, 0.5, 0.5)
    b = m.step_performance["b"]
    assert (b.failure_rate, b.business_outcome_rate) == (0.0, 0.5)


@pytest.mark.parametrize(
    "worse",
    [
        {"error_rate": 0.5, "retry_share": 0.0, "efficiency": 1.0},
        {"error_rate": 0.0, "retry_share": 0.5, "efficiency": 1.0},
        {"error_rate": 0.0, "retry_share": 0.0, "efficiency": 0.5},
    ],
)
def test_score_is_in_range_and_falls_with_each_weakness(worse: dict[str, float]) -> None:
    """100 for a perfect workflow; more errors, retries or waiting lower it; never below 0."""
    perfect = optimization_score(error_rate=0.0, retry_share=0.0, efficiency=1.0)
    assert perfect == 100.0
    assert 0.0 <= optimization_score(**worse) < perfect
    assert optimization_score(error_rate=5, retry_share=5, efficiency=-1) == 0.0


async def test_score_of_sequential_independent_steps_reflects_the_wasted_time() -> None:
    """Chained steps that could overlap score lower than the same steps already parallel."""
    chain = AdvancedWorkflow.from_dict(
        {
            "name": "four",
            "steps": [
                {"step_id": "a", "action": "x"},
                {"step_id": "b", "action": "x", "dependencies": ["a"]},
            ],
        }
    )
    opt = WorkflowOptimizer(checkpointer="memory")
    serial = [crafted_run({"a": 1.0, "b": 1.0}, makespan=2.0) for _ in range(2)]
    parallel = [crafted_run({"a": 1.0, "b": 1.0}, makespan=1.0) for _ in range(2)]
    slow = await opt.analyze_workflow_performance(chain, history=serial)
    fast = await opt.analyze_workflow_performance(chain, history=parallel)
    assert slow.critical_path_seconds == pytest.approx(1.0)
    assert slow.optimization_score == pytest.approx(85.0)
    assert fast.optimization_score == 100.0


async def test_steps_a_failed_run_never_reached_are_not_counted() -> None:
    """`pending` entries left by a run that failed early are neither runs nor skips."""
    failed = {"a": {"status": "failed", "error_type": "IOError"}, "b": {"status": "pending"}}
    runs = [
        crafted_run({"a": 1.0, "b": 1.0}),
        crafted_run({"a": 1.0}, results=failed, status="failed"),
    ]
    m = await WorkflowOptimizer(checkpointer="memory").analyze_workflow_performance(
        FOUR, history=runs
    )
    b = m.step_performance["b"]
    assert (b.runs, b.executed, b.skip_rate) == (1, 1, 0.0)
    assert m.error_rate == 0.5
