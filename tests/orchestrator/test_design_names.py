"""The names and fields of DESIGN.md section 8 and issue 12, called as a reader of the design
would call them."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from conftest import FakeClock
from prometheus_client import generate_latest

from orchestrator import (
    ActionRegistry,
    AdvancedWorkflowEngine,
    EnterpriseWorkflowOrchestrator,
    MetricsCollector,
    StepContext,
)
from policies import CircuitBreaker, CircuitOpenError, RetryPolicy, retry_delays
from state import AdvancedWorkflow, InvalidInputError, WorkflowDefinitionError, WorkflowStatus


def _one_step(**step: Any) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {"name": "one", "steps": [{"step_id": "work", "action": "work", **step}]}
    )


def test_circuit_breaker_needs_no_name() -> None:
    """`CircuitBreaker(failure_threshold=5, timeout=30)` opens after five failures."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=5, timeout=30, clock=clock)
    for _ in range(5):
        breaker.before_call()
        breaker.record_failure()
    with pytest.raises(CircuitOpenError, match="circuit"):
        breaker.before_call()
    clock.advance(30)
    breaker.before_call()  # half open: one trial goes through


@pytest.mark.parametrize(
    ("strategy", "delays"),
    [
        ("exponential", [0.1, 0.2, 0.4]),
        ("linear", [0.1, 0.2, 0.3]),
        ("fixed", [0.1, 0.1, 0.1]),
    ],
)
def test_retry_policy_backoff_strategies(strategy: str, delays: list[float]) -> None:
    """`RetryPolicy(max_attempts=..., backoff_strategy=...)` spaces retries by its strategy."""
    policy = RetryPolicy(max_attempts=4, backoff_strategy=strategy, initial_delay=0.1, jitter=0)  # type: ignore[arg-type]
    assert [round(d, 6) for d in retry_delays(policy)] == delays


def test_unknown_backoff_strategy_is_refused() -> None:
    """A strategy that does not exist is a definition error naming the choices."""
    with pytest.raises(WorkflowDefinitionError, match="exponential"):
        AdvancedWorkflow.from_dict(
            {
                "name": "x",
                "retry_policy": {"backoff_strategy": "random"},
                "steps": [{"step_id": "a", "action": "a"}],
            }
        )


def test_metrics_collector_records_an_orchestration_decision() -> None:
    """`record_orchestration_decision(workflow_id, strategy, complexity)` counts and observes."""
    metrics = MetricsCollector()
    metrics.record_orchestration_decision("loan", "parallel", 12.0)
    get = metrics.registry.get_sample_value
    assert get("orchestrator_decisions_total", {"workflow": "loan", "strategy": "parallel"}) == 1
    assert get("orchestrator_decision_complexity_sum", {"workflow": "loan"}) == 12.0


def _registry(log: list[str] | None = None) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("work")
    async def work(n: int = 1) -> dict[str, int]:
        if log is not None:
            log.append(f"start {n}")
        await asyncio.sleep(0.05)
        if log is not None:
            log.append(f"end {n}")
        return {"n": n, "double": 2 * n}

    return registry


async def test_engine_returns_a_plain_dict(tmp_path: Any) -> None:
    """`AdvancedWorkflowEngine(step_executor=registry, monitor=None).execute_workflow(...)`."""
    engine = AdvancedWorkflowEngine(step_executor=_registry(), monitor=None,
                                    checkpointer=f"sqlite:///{tmp_path / 'r.sqlite'}")  # fmt: skip
    wf = _one_step(input_mapping={"n": "input.n"}, output_mapping={"out": "double"})
    out = await engine.execute_workflow(wf, input_data={"n": 4}, execution_options={})
    await engine.aclose()
    assert isinstance(out, dict)
    assert (out["status"], out["workflow_id"]) == ("completed", "one")
    assert out["result"] == {"n": 4, "out": 8}
    assert out["run_id"]
    assert out["step_results"]["work"]["status"] == "completed"
    assert out["execution_time"] >= 0.05
    assert out["error_counts"] == {}


async def test_engine_monitor_is_the_metrics_collector() -> None:
    """A `MetricsCollector` passed as `monitor` counts the engine's runs."""
    monitor = MetricsCollector()
    engine = AdvancedWorkflowEngine(_registry(), monitor, checkpointer="memory")
    await engine.execute_workflow(_one_step(), {})
    sample = monitor.registry.get_sample_value
    assert sample("orchestrator_runs_finished_total", {"workflow": "one", "status": "completed"})


async def test_execution_options_override_the_run() -> None:
    """`run_id`, `timeout` and `global_variables` in execution_options apply to that run."""
    orch = EnterpriseWorkflowOrchestrator(registry=_registry(), checkpointer="memory")
    wf = _one_step(input_mapping={"n": "globals.n"})
    run = await orch.execute_workflow(
        wf, {}, execution_options={"run_id": "r-1", "timeout": 60, "global_variables": {"n": 3}}
    )
    assert (run.run_id, run.status) == ("r-1", WorkflowStatus.COMPLETED)
    assert (await orch.status("r-1")).step_results["work"]["status"] == "completed"


async def test_unknown_execution_option_names_the_known_ones() -> None:
    """A misspelt option is refused with the accepted keys."""
    orch = EnterpriseWorkflowOrchestrator(registry=_registry(), checkpointer="memory")
    with pytest.raises(
        InvalidInputError, match=r"unknown execution_options 'timout'; use run_id, timeout"
    ):
        await orch.execute_workflow(_one_step(), {}, execution_options={"timout": 5})


async def test_max_concurrent_workflows_makes_extra_runs_wait() -> None:
    """With a cap of 1, three concurrent runs all complete, one at a time."""
    log: list[str] = []
    orch = EnterpriseWorkflowOrchestrator(
        {"max_concurrent_workflows": 1}, registry=_registry(log), checkpointer="memory"
    )
    wf = _one_step(input_mapping={"n": "input.n"})
    runs = await asyncio.gather(*(orch.execute_workflow(wf, {"n": n}) for n in range(3)))
    assert [r.status for r in runs] == [WorkflowStatus.COMPLETED] * 3
    # never two starts in a row: each run ended before the next began
    assert all(a.split()[0] != b.split()[0] for a, b in itertools.pairwise(log))
    assert len(log) == 6


def test_max_concurrent_workflows_must_be_positive() -> None:
    """A cap of 0 is refused with the way out."""
    with pytest.raises(InvalidInputError, match="max_concurrent_workflows"):
        EnterpriseWorkflowOrchestrator({"max_concurrent_workflows": 0}, checkpointer="memory")


async def test_metrics_enabled_false_leaves_the_step_out_of_step_metrics() -> None:
    """A step with `metrics_enabled: false` has no step series; the run is still counted."""
    metrics = MetricsCollector()
    orch = EnterpriseWorkflowOrchestrator(
        registry=_registry(), checkpointer="memory", metrics=metrics
    )
    await orch.execute_workflow(_one_step(metrics_enabled=False), {})
    get = metrics.registry.get_sample_value
    labels = {"workflow": "one", "step_type": "sequential", "outcome": "completed"}
    assert get("orchestrator_step_outcomes_total", labels) is None
    assert get("orchestrator_runs_finished_total", {"workflow": "one", "status": "completed"})


async def test_custom_metrics_are_series_the_action_sets() -> None:
    """`custom_metrics` names become series: set from `ctx.metric`, or read from the output."""
    registry = ActionRegistry()

    @registry.action("scan")
    async def scan(ctx: StepContext) -> dict[str, int]:
        ctx.metric("pages_scanned", 7)
        ctx.metric("scan_batches", 2)
        return {"found": 3}

    metrics = MetricsCollector()
    orch = EnterpriseWorkflowOrchestrator(registry=registry, checkpointer="memory", metrics=metrics)
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "docs",
            "steps": [
                {
                    "step_id": "scan",
                    "action": "scan",
                    "custom_metrics": {
                        "pages_scanned": "gauge",
                        "scan_batches": "counter",
                        "items_found": "found",
                    },
                }
            ],
        }
    )
    run = await orch.execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED, run.error
    get = metrics.registry.get_sample_value
    labels = {"workflow": "docs", "step": "scan"}
    assert get("pages_scanned", labels) == 7
    assert get("scan_batches_total", labels) == 2
    assert get("items_found", labels) == 3
    assert b"pages_scanned" in generate_latest(metrics.registry)


async def test_custom_metric_not_declared_fails_the_step_with_the_fix() -> None:
    """Recording an undeclared metric fails the step, naming the declared ones."""
    registry = ActionRegistry()

    @registry.action("work")
    async def work(ctx: StepContext) -> None:
        ctx.metric("surprise", 1)

    orch = EnterpriseWorkflowOrchestrator(registry=registry, checkpointer="memory")
    wf = _one_step(custom_metrics=["declared"], retry_policy={"max_attempts": 1})
    run = await orch.execute_workflow(wf, {})
    assert run.status is WorkflowStatus.FAILED
    assert "add 'surprise' to its custom_metrics" in run.error["message"]


def test_custom_metric_names_are_checked_at_load_time() -> None:
    """A name Prometheus refuses is a definition error."""
    with pytest.raises(WorkflowDefinitionError, match="not a Prometheus metric name"):
        _one_step(custom_metrics=["9lives"])


async def test_error_counts_count_every_failed_attempt() -> None:
    """Two failed attempts before a success count two errors."""
    registry = ActionRegistry()

    @registry.action("work")
    async def work(ctx: StepContext) -> str:
        if ctx.attempt < 3:
            raise ConnectionError("dropped")
        return "ok"

    orch = EnterpriseWorkflowOrchestrator(
        registry=registry, checkpointer="memory", sleep=lambda _s: asyncio.sleep(0)
    )
    run = await orch.execute_workflow(_one_step(), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.error_counts == {"ConnectionError": 2}


async def test_engine_honours_max_concurrent_workflows() -> None:
    """An engine configured with a cap of 1 runs concurrent calls one after another."""
    log: list[str] = []
    engine = AdvancedWorkflowEngine(
        _registry(log), config={"max_concurrent_workflows": 1}, checkpointer="memory"
    )
    wf = _one_step(input_mapping={"n": "input.n"})
    outs = await asyncio.gather(*(engine.execute_workflow(wf, {"n": n}) for n in range(2)))
    assert [o["status"] for o in outs] == ["completed", "completed"]
    assert [entry.split()[0] for entry in log] == ["start", "end", "start", "end"]
