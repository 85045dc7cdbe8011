"""Step policies through the public contract: retry, circuit breaker, timeouts, inputs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from conftest import FakeClock, RecordingSleep

from orchestrator import ActionRegistry, StepContext
from state import AdvancedWorkflow, WorkflowStatus


def _flaky_registry(failures: int, keys: list[str]) -> ActionRegistry:
    registry = ActionRegistry()
    calls = {"n": 0}

    @registry.action("flaky")
    async def flaky(ctx: StepContext) -> dict[str, int]:
        calls["n"] += 1
        keys.append(ctx.idempotency_key)
        if calls["n"] <= failures:
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return {"attempt": ctx.attempt}

    return registry


def _one_step(**policy: Any) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {"name": "one", "retry_policy": policy, "steps": [{"step_id": "s", "action": "flaky"}]}
    )


async def test_retry_waits_exponential_backoff_then_succeeds(
    make_orch: Any, sleep: RecordingSleep
) -> None:
    """Two failures then success: delays double from initial_delay, attempts are recorded."""
    keys: list[str] = []
    wf = _one_step(max_attempts=4, initial_delay=0.1, max_delay=10, jitter=0)
    run = await make_orch(_flaky_registry(2, keys)).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert sleep.delays == [0.1, 0.2]
    assert run.step_results["s"]["attempts"] == 3
    assert run.result == {}


async def test_retry_delay_is_capped_by_max_delay(make_orch: Any, sleep: RecordingSleep) -> None:
    """Backoff never exceeds max_delay."""
    wf = _one_step(max_attempts=5, initial_delay=1.0, max_delay=2.5, jitter=0)
    run = await make_orch(_flaky_registry(4, [])).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert sleep.delays == [1.0, 2.0, 2.5, 2.5]


async def test_retries_exhausted_fail_the_step(make_orch: Any, sleep: RecordingSleep) -> None:
    """After max_attempts the last error fails the run."""
    wf = _one_step(max_attempts=3, initial_delay=0.1, max_delay=1, jitter=0)
    run = await make_orch(_flaky_registry(10, [])).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.FAILED
    assert run.step_results["s"]["attempts"] == 3
    assert run.error is not None
    assert run.error["error_type"] == "ConnectionError"
    assert len(sleep.delays) == 2


async def test_retry_on_limits_which_errors_retry(make_orch: Any, sleep: RecordingSleep) -> None:
    """An error not named in retry_on fails at once."""
    wf = _one_step(max_attempts=3, retry_on=["TimeoutError"])
    run = await make_orch(_flaky_registry(1, [])).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.FAILED
    assert run.step_results["s"]["attempts"] == 1
    assert sleep.delays == []


async def test_idempotency_key_is_stable_across_retries(make_orch: Any) -> None:
    """Every attempt of a step sees the same idempotency key, tied to run and step."""
    keys: list[str] = []
    wf = _one_step(max_attempts=3, initial_delay=0)
    run = await make_orch(_flaky_registry(2, keys)).execute_workflow(wf, {})
    assert len(keys) == 3
    assert len(set(keys)) == 1
    assert keys[0] == f"{run.run_id}:s"


async def test_step_retry_policy_overrides_workflow_fields(
    make_orch: Any, sleep: RecordingSleep
) -> None:
    """A step's retry_policy replaces only the fields it sets."""
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "ovr",
            "retry_policy": {"max_attempts": 5, "initial_delay": 0.3, "jitter": 0},
            "steps": [{"step_id": "s", "action": "flaky", "retry_policy": {"max_attempts": 2}}],
        }
    )
    run = await make_orch(_flaky_registry(10, [])).execute_workflow(wf, {})
    assert run.step_results["s"]["attempts"] == 2
    assert sleep.delays == [0.3]


async def test_circuit_opens_and_fails_fast_across_runs(make_orch: Any) -> None:
    """After failure_threshold failures the breaker opens: the action is not called again."""
    calls: list[int] = []
    registry = ActionRegistry()

    @registry.action("down")
    async def down() -> None:
        calls.append(1)
        raise ConnectionError("service down")

    clock = FakeClock()
    orch = make_orch(registry, {"failure_threshold": 2, "timeout": 30}, clock=clock)
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "cb",
            "retry_policy": {"max_attempts": 1},
            "steps": [{"step_id": "s", "action": "down"}],
        }
    )
    for _ in range(2):
        assert (await orch.execute_workflow(wf, {})).status is WorkflowStatus.FAILED
    third = await orch.execute_workflow(wf, {})
    assert third.status is WorkflowStatus.FAILED
    assert third.error is not None
    assert third.error["error_type"] == "CircuitOpenError"
    assert "circuit_open" in third.compliance_flags
    assert len(calls) == 2


async def test_circuit_half_opens_after_timeout_and_closes_on_success(make_orch: Any) -> None:
    """Once the timeout passes one trial call goes through; its success closes the circuit."""
    healthy = {"ok": False}
    registry = ActionRegistry()

    @registry.action("svc")
    async def svc() -> dict[str, bool]:
        if not healthy["ok"]:
            raise ConnectionError("down")
        return {"ok": True}

    clock = FakeClock()
    orch = make_orch(registry, {"failure_threshold": 1, "timeout": 30}, clock=clock)
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "cb2",
            "retry_policy": {"max_attempts": 1},
            "steps": [{"step_id": "s", "action": "svc"}],
        }
    )
    await orch.execute_workflow(wf, {})
    healthy["ok"] = True
    blocked = await orch.execute_workflow(wf, {})
    assert blocked.error is not None
    assert blocked.error["error_type"] == "CircuitOpenError"
    clock.advance(31)
    assert (await orch.execute_workflow(wf, {})).status is WorkflowStatus.COMPLETED
    assert (await orch.execute_workflow(wf, {})).status is WorkflowStatus.COMPLETED


async def test_step_timeout_cuts_off_slow_action(make_orch: Any) -> None:
    """An attempt longer than the step timeout fails with StepTimeoutError."""
    registry = ActionRegistry()

    @registry.action("slow")
    async def slow() -> None:
        await asyncio.sleep(5)

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "to",
            "retry_policy": {"max_attempts": 1},
            "steps": [{"step_id": "s", "action": "slow", "timeout": 0.05}],
        }
    )
    run = await make_orch(registry).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "StepTimeoutError"
    assert "'s'" in run.error["message"]


async def test_workflow_timeout_ends_run_timed_out(make_orch: Any) -> None:
    """When the workflow timeout passes between steps the run ends timed_out."""
    clock = FakeClock()
    registry = ActionRegistry()

    @registry.action("tick")
    async def tick() -> dict[str, int]:
        clock.advance(40)
        return {}

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "wt",
            "timeout": 60,
            "steps": [
                {"step_id": "a", "action": "tick"},
                {"step_id": "b", "action": "tick", "dependencies": ["a"]},
                {"step_id": "c", "action": "tick", "dependencies": ["b"]},
            ],
        }
    )
    run = await make_orch(registry, clock=clock).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.TIMED_OUT
    assert run.completed_steps == ["a", "b"]
    assert run.error is not None
    assert "timeout" in run.error["message"]


async def test_sync_action_runs_off_the_event_loop(make_orch: Any) -> None:
    """A sync action runs in a worker thread, not on the event loop's thread."""
    loop_thread = threading.get_ident()
    seen: list[int] = []
    registry = ActionRegistry()

    @registry.action("blocking")
    def blocking() -> dict[str, bool]:
        seen.append(threading.get_ident())
        return {"ok": True}

    wf = AdvancedWorkflow.from_dict(
        {"name": "sync", "steps": [{"step_id": "s", "action": "blocking"}]}
    )
    run = await make_orch(registry).execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert seen
    assert seen[0] != loop_thread


async def test_input_validation_rejects_wrong_types(make_orch: Any) -> None:
    """input_validation fails the step before the action runs, naming the bad input."""
    called: list[Any] = []
    registry = ActionRegistry()

    @registry.action("charge")
    async def charge(amount: Any) -> None:
        called.append(amount)

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "iv",
            "steps": [
                {
                    "step_id": "s",
                    "action": "charge",
                    "input_mapping": {"amount": "input.amount"},
                    "input_validation": {"amount": "number"},
                }
            ],
        }
    )
    run = await make_orch(registry).execute_workflow(wf, {"amount": "ten"})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "'amount' should be number" in run.error["message"]
    assert called == []


async def test_mapping_to_unknown_parameter_is_clear_error(make_orch: Any) -> None:
    """Mapping an input the action does not take fails with the action's parameters named."""
    registry = ActionRegistry()

    @registry.action("greet")
    async def greet(name: str) -> str:
        return name

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "map",
            "steps": [{"step_id": "s", "action": "greet", "input_mapping": {"nmae": "input.name"}}],
        }
    )
    run = await make_orch(registry).execute_workflow(wf, {"name": "x"})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "its parameters are (name)" in run.error["message"]
    assert run.step_results["s"]["attempts"] == 1


async def test_resource_usage_records_wall_cpu_and_attempts(make_orch: Any) -> None:
    """Each step's wall time, CPU time and attempts are kept in `resource_usage`."""
    clock = FakeClock()
    registry = ActionRegistry()
    calls = {"n": 0}

    @registry.action("work")
    async def work() -> dict[str, int]:
        calls["n"] += 1
        clock.advance(2.5)
        if calls["n"] == 1:
            raise ConnectionError("once")
        return {"n": calls["n"]}

    wf = AdvancedWorkflow.from_dict(
        {
            "name": "usage",
            "retry_policy": {"initial_delay": 0},
            "steps": [{"step_id": "s", "action": "work"}],
        }
    )
    orch = make_orch(registry, clock=clock)
    run = await orch.execute_workflow(wf, {})
    values = (await orch.graph.aget_state({"configurable": {"thread_id": run.run_id}})).values
    usage = values["resource_usage"]["s"]
    assert usage["attempts"] == 2
    assert usage["wall_seconds"] == 5.0
    assert usage["cpu_seconds"] >= 0.0
    assert run.step_results["s"]["duration_seconds"] == 5.0
