"""Circuit breaker: state transitions on a fake clock, fail-fast, one half-open trial."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from langgraph.errors import GraphInterrupt

from policies import CircuitBreaker, CircuitBreakers, CircuitOpenError, CircuitState
from state import InvalidInputError


class FakeClock:
    """A clock that stands still until a test advances `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Action:
    """Counts its calls; fails while `failing` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    async def __call__(self) -> str:
        self.calls += 1
        if self.failing:
            raise ConnectionError("service down")
        return "ok"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(
    clock: FakeClock, *, failure_threshold: int = 3, on_state_change: Any = None
) -> CircuitBreaker:
    return CircuitBreaker(
        "pay",
        failure_threshold=failure_threshold,
        timeout=30.0,
        clock=clock,
        on_state_change=on_state_change,
    )


async def fail(circuit: CircuitBreaker, action: Action, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await circuit.call(action)


def test_starts_closed(clock: FakeClock) -> None:
    """A new breaker is closed."""
    assert breaker(clock).state is CircuitState.CLOSED


async def test_opens_after_consecutive_failures(clock: FakeClock) -> None:
    """failure_threshold consecutive failures open the circuit."""
    circuit, action = breaker(clock), Action()
    await fail(circuit, action, 2)
    assert circuit.state is CircuitState.CLOSED
    await fail(circuit, action, 1)
    assert circuit.state is CircuitState.OPEN


async def test_success_resets_the_failure_count(clock: FakeClock) -> None:
    """A success in between means the failures are not consecutive."""
    circuit, action = breaker(clock), Action()
    await fail(circuit, action, 2)
    action.failing = False
    assert await circuit.call(action) == "ok"
    assert circuit.failure_count == 0
    action.failing = True
    await fail(circuit, action, 2)
    assert circuit.state is CircuitState.CLOSED


async def test_open_circuit_fails_fast_without_calling(clock: FakeClock) -> None:
    """While open, calls raise CircuitOpenError and the action is not called."""
    circuit, action = breaker(clock), Action()
    await fail(circuit, action, 3)
    with pytest.raises(CircuitOpenError, match="circuit for action 'pay' is open"):
        await circuit.call(action)
    assert action.calls == 3


async def test_open_error_says_when_to_retry(clock: FakeClock) -> None:
    """CircuitOpenError carries the action name and the seconds left until half-open."""
    circuit = breaker(clock)
    await fail(circuit, Action(), 3)
    clock.now += 10
    with pytest.raises(CircuitOpenError) as caught:
        circuit.before_call()
    assert (caught.value.action, caught.value.retry_after) == ("pay", 20.0)


async def test_becomes_half_open_after_timeout(clock: FakeClock) -> None:
    """Once the timeout has passed the open circuit reads as half-open."""
    circuit = breaker(clock)
    await fail(circuit, Action(), 3)
    clock.now += 29.9
    assert circuit.state is CircuitState.OPEN
    clock.now += 0.1
    assert circuit.state is CircuitState.HALF_OPEN


async def test_successful_trial_closes(clock: FakeClock) -> None:
    """A successful half-open trial closes the circuit: closed -> open -> half_open -> closed."""
    circuit, action = breaker(clock), Action()
    await fail(circuit, action, 3)
    clock.now += 30
    action.failing = False
    assert await circuit.call(action) == "ok"
    assert circuit.state is CircuitState.CLOSED
    assert circuit.failure_count == 0


async def test_failed_trial_reopens_with_fresh_timeout(clock: FakeClock) -> None:
    """A failed half-open trial opens the circuit again for a full timeout."""
    circuit, action = breaker(clock), Action()
    await fail(circuit, action, 3)
    clock.now += 30
    await fail(circuit, action, 1)
    assert circuit.state is CircuitState.OPEN
    clock.now += 29.9
    assert circuit.state is CircuitState.OPEN
    clock.now += 0.1
    assert circuit.state is CircuitState.HALF_OPEN


async def test_only_one_trial_in_half_open(clock: FakeClock) -> None:
    """While the trial is in flight, other callers fail fast; its success closes the circuit."""
    circuit, action = breaker(clock), Action()
    await fail(circuit, action, 3)
    clock.now += 30
    release = asyncio.Event()
    trial_calls = 0

    async def slow_trial() -> str:
        nonlocal trial_calls
        trial_calls += 1
        await release.wait()
        return "ok"

    trial = asyncio.create_task(circuit.call(slow_trial))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError) as caught:
        await circuit.call(slow_trial)
    assert caught.value.retry_after == 0.0
    release.set()
    assert await trial == "ok"
    assert trial_calls == 1
    assert circuit.state is CircuitState.CLOSED


async def test_cancelled_trial_frees_the_slot(clock: FakeClock) -> None:
    """A cancelled trial counts as nothing, and the next caller becomes the trial."""
    circuit, action = breaker(clock), Action()
    await fail(circuit, action, 3)
    clock.now += 30
    trial = asyncio.create_task(circuit.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert circuit.state is CircuitState.HALF_OPEN
    action.failing = False
    assert await circuit.call(action) == "ok"


async def test_graph_interrupt_is_not_a_failure(clock: FakeClock) -> None:
    """A LangGraph interrupt passes through without counting as a failure."""
    circuit = breaker(clock, failure_threshold=1)

    async def asks_a_human() -> str:
        raise GraphInterrupt

    with pytest.raises(GraphInterrupt):
        await circuit.call(asks_a_human)
    assert circuit.state is CircuitState.CLOSED


async def test_late_success_does_not_close_an_open_circuit(clock: FakeClock) -> None:
    """A success recorded while open (a call that started earlier) leaves it open."""
    circuit = breaker(clock)
    await fail(circuit, Action(), 3)
    circuit.record_success()
    assert circuit.state is CircuitState.OPEN


async def test_listener_sees_every_transition(clock: FakeClock) -> None:
    """on_state_change receives name, old and new as keywords for each transition."""
    seen: list[tuple[str, str, str]] = []

    def listener(*, name: str, old: CircuitState, new: CircuitState) -> None:
        seen.append((name, old, new))

    circuit, action = breaker(clock, on_state_change=listener), Action()
    await fail(circuit, action, 3)
    clock.now += 30
    action.failing = False
    await circuit.call(action)
    assert seen == [
        ("pay", "closed", "open"),
        ("pay", "open", "half_open"),
        ("pay", "half_open", "closed"),
    ]


@pytest.mark.parametrize("threshold", [0, -1, True])
def test_rejects_bad_failure_threshold(threshold: int) -> None:
    """failure_threshold below 1 is refused with the bad value and the fix."""
    with pytest.raises(InvalidInputError, match=rf"at least 1, got {threshold!r}.*pass"):
        CircuitBreaker("pay", failure_threshold=threshold)


@pytest.mark.parametrize("timeout", [0, -5.0, math.inf, math.nan])
def test_rejects_bad_timeout(timeout: float) -> None:
    """A timeout that is not a positive finite number of seconds is refused."""
    with pytest.raises(InvalidInputError, match=r"positive number of seconds, got .*timeout=30"):
        CircuitBreaker("pay", timeout=timeout)


def test_registry_hands_out_one_breaker_per_name(clock: FakeClock) -> None:
    """The registry returns the same breaker for a name and a different one per name."""
    breakers = CircuitBreakers(clock=clock)
    assert breakers.get("pay") is breakers.get("pay")
    assert breakers.get("pay") is not breakers.get("ship")


async def test_registry_shares_settings_and_reports_states(clock: FakeClock) -> None:
    """Breakers from a registry use its settings, and states() reports each by name."""
    breakers = CircuitBreakers(failure_threshold=1, timeout=5.0, clock=clock)
    await fail(breakers.get("pay"), Action(), 1)
    breakers.get("ship")
    assert breakers.states() == {"pay": CircuitState.OPEN, "ship": CircuitState.CLOSED}
    clock.now += 5
    assert breakers.states()["pay"] is CircuitState.HALF_OPEN


def test_registry_validates_settings() -> None:
    """A registry refuses bad settings up front, before any breaker exists."""
    with pytest.raises(InvalidInputError, match="failure_threshold"):
        CircuitBreakers(failure_threshold=0)
