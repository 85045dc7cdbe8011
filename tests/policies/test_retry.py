"""Retry: backoff delays, which errors are retried, and the retry loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.errors import GraphInterrupt

from policies import (
    RetryPolicy,
    backoff_delay,
    call_with_retry,
    is_control_flow,
    is_retryable,
    retry_delays,
)
from state import CircuitOpenError, MappingError


class RecordingSleep:
    """Stands in for asyncio.sleep: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Flaky:
    """An action that fails a given number of times, then returns "ok"."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.attempts: list[int] = []

    async def __call__(self, attempt: int) -> str:
        self.attempts.append(attempt)
        if len(self.attempts) <= self.failures:
            raise self.error(f"failure {len(self.attempts)}")
        return "ok"


def policy(**changes: Any) -> RetryPolicy:
    settings: dict[str, Any] = {"max_attempts": 4, "initial_delay": 0.1, "jitter": 0.0}
    return RetryPolicy(**{**settings, **changes})


def test_delays_grow_exponentially() -> None:
    """Delays double from initial_delay when jitter is off."""
    assert list(retry_delays(policy())) == [0.1, 0.2, 0.4]


def test_delays_are_capped_at_max_delay() -> None:
    """No delay exceeds max_delay."""
    capped = policy(max_attempts=5, max_delay=0.25)
    assert list(retry_delays(capped)) == [0.1, 0.2, 0.25, 0.25]


def test_one_attempt_has_no_delays() -> None:
    """max_attempts=1 means no retry and so no delay."""
    assert list(retry_delays(policy(max_attempts=1))) == []


def test_jitter_adds_a_fraction_of_the_delay() -> None:
    """Jitter adds delay * jitter * rng() on top of the base delay."""
    delays = list(retry_delays(policy(jitter=0.5), rng=lambda: 0.5))
    assert delays == [0.1 * 1.25, 0.2 * 1.25, 0.4 * 1.25]


def test_jitter_stays_within_bounds() -> None:
    """With rng at its extremes the delay stays between base and base * (1 + jitter)."""
    jittery = policy(jitter=0.2)
    low = list(retry_delays(jittery, rng=lambda: 0.0))
    high = list(retry_delays(jittery, rng=lambda: 0.999999))
    assert low == [0.1, 0.2, 0.4]
    for base, delay in zip(low, high, strict=True):
        assert base <= delay <= base * 1.2


def test_jitter_is_capped_at_max_delay() -> None:
    """Jitter never pushes a delay above max_delay."""
    jittery = policy(jitter=1.0, max_delay=0.3)
    assert list(retry_delays(jittery, rng=lambda: 0.99)) == [0.1 * 1.99, 0.3, 0.3]


def test_huge_multiplier_does_not_overflow() -> None:
    """A backoff that would overflow a float is simply max_delay."""
    steep = policy(max_attempts=100, backoff_multiplier=1e10, max_delay=60.0)
    assert backoff_delay(steep, 99) == 60.0


def test_backoff_delay_rejects_retry_zero() -> None:
    """Retry numbers start at 1."""
    with pytest.raises(ValueError, match="retry numbers start at 1, got 0"):
        backoff_delay(policy(), 0)


def test_retry_on_matches_class_names() -> None:
    """Only errors named in retry_on are retried."""
    only_connection = policy(retry_on=("ConnectionError",))
    assert is_retryable(only_connection, ConnectionError())
    assert not is_retryable(only_connection, ValueError())


def test_retry_on_matches_base_classes() -> None:
    """A base class name in retry_on matches its subclasses."""
    lookups = policy(retry_on=("LookupError",))
    assert is_retryable(lookups, KeyError("x"))


def test_retry_on_matches_qualified_names() -> None:
    """A module-qualified class name matches as well as the short one."""
    assert is_retryable(policy(retry_on=("builtins.TimeoutError",)), TimeoutError())


def test_no_retry_on_wins_over_retry_on() -> None:
    """An error named in no_retry_on is never retried, even if retry_on matches."""
    picky = policy(retry_on=("Exception",), no_retry_on=("ValueError",))
    assert not is_retryable(picky, ValueError())
    assert is_retryable(picky, KeyError())


def test_default_policy_does_not_retry_open_circuits_or_bad_mappings() -> None:
    """The defaults leave out errors a retry cannot fix."""
    assert not is_retryable(RetryPolicy(), CircuitOpenError("pay", 3.0))
    assert not is_retryable(RetryPolicy(), MappingError("bad path"))


@pytest.mark.parametrize(
    "signal",
    [asyncio.CancelledError(), KeyboardInterrupt(), GraphInterrupt()],
    ids=["cancelled", "keyboard-interrupt", "graph-interrupt"],
)
def test_control_flow_is_never_retried(signal: BaseException) -> None:
    """Cancellation, KeyboardInterrupt and LangGraph signals are never retried."""
    everything = policy(retry_on=("BaseException",), no_retry_on=())
    assert is_control_flow(signal)
    assert not is_retryable(everything, signal)


async def test_call_sleeps_the_exact_backoff_delays() -> None:
    """The injected sleep receives exactly the backoff delays."""
    sleep = RecordingSleep()
    result = await call_with_retry(Flaky(failures=3), policy(), sleep=sleep)
    assert result == "ok"
    assert sleep.delays == [0.1, 0.2, 0.4]


async def test_call_passes_one_based_attempt_numbers() -> None:
    """fn receives the attempt number, starting at 1."""
    action = Flaky(failures=2)
    await call_with_retry(action, policy(), sleep=RecordingSleep())
    assert action.attempts == [1, 2, 3]


async def test_call_uses_injected_rng_for_jitter() -> None:
    """Jitter comes from the injected rng."""
    sleep = RecordingSleep()
    await call_with_retry(Flaky(failures=1), policy(jitter=0.5), sleep=sleep, rng=lambda: 1.0)
    assert sleep.delays == [0.1 + 0.1 * 0.5 * 1.0]


async def test_call_reraises_last_error_with_attempts() -> None:
    """After max_attempts the last error is re-raised with `attempts` set."""
    with pytest.raises(ConnectionError, match="failure 4") as caught:
        await call_with_retry(Flaky(failures=10), policy(), sleep=RecordingSleep())
    assert caught.value.attempts == 4  # type: ignore[attr-defined]


async def test_call_does_not_retry_unlisted_errors() -> None:
    """An error the policy does not retry is raised at once, with attempts=1."""
    sleep = RecordingSleep()
    action = Flaky(failures=1, error=ValueError)
    with pytest.raises(ValueError, match="failure 1") as caught:
        await call_with_retry(action, policy(retry_on=("ConnectionError",)), sleep=sleep)
    assert caught.value.attempts == 1  # type: ignore[attr-defined]
    assert sleep.delays == []


async def test_call_stops_retrying_at_a_non_retryable_error() -> None:
    """A non-retryable error on a later attempt ends the loop with that attempt count."""
    errors = iter([ConnectionError("flaky"), PermissionError("denied")])

    async def action(attempt: int) -> str:
        raise next(errors)

    picky = policy(no_retry_on=("PermissionError",))
    with pytest.raises(PermissionError) as caught:
        await call_with_retry(action, picky, sleep=RecordingSleep())
    assert caught.value.attempts == 2  # type: ignore[attr-defined]


async def test_on_retry_receives_attempt_error_and_delay() -> None:
    """on_retry gets keyword arguments for each retry: the failed attempt, its error, the delay."""
    calls: list[dict[str, Any]] = []
    await call_with_retry(
        Flaky(failures=2),
        policy(),
        sleep=RecordingSleep(),
        on_retry=lambda **kwargs: calls.append(kwargs),
    )
    assert [(c["attempt"], str(c["error"]), c["delay"]) for c in calls] == [
        (1, "failure 1", 0.1),
        (2, "failure 2", 0.2),
    ]


async def test_async_on_retry_is_awaited() -> None:
    """An async on_retry callback is awaited before the sleep."""
    events: list[str] = []

    async def on_retry(*, attempt: int, error: BaseException, delay: float) -> None:
        await asyncio.sleep(0)
        events.append(f"retry {attempt}")

    async def sleep(seconds: float) -> None:
        events.append(f"sleep {seconds}")

    await call_with_retry(Flaky(failures=1), policy(), sleep=sleep, on_retry=on_retry)
    assert events == ["retry 1", "sleep 0.1"]


async def test_cancellation_passes_through_without_retry() -> None:
    """CancelledError from fn is re-raised at once and gets no attempts attribute."""
    sleep = RecordingSleep()

    async def cancelled(attempt: int) -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError) as caught:
        await call_with_retry(cancelled, policy(), sleep=sleep)
    assert sleep.delays == []
    assert not hasattr(caught.value, "attempts")


async def test_graph_interrupt_passes_through_without_retry() -> None:
    """A LangGraph interrupt inside fn is never retried."""
    action = Flaky(failures=5, error=GraphInterrupt)
    with pytest.raises(GraphInterrupt):
        await call_with_retry(action, policy(), sleep=RecordingSleep())
    assert action.attempts == [1]
