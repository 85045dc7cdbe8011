"""Circuit breakers: stop calling an action that keeps failing, and try it again later.

A breaker is closed (calls go through) until `failure_threshold` consecutive calls fail. It
then opens: calls fail fast with `CircuitOpenError` without running. After `timeout` seconds
it is half-open and lets exactly one trial call through; the trial's success closes it, its
failure opens it again for another `timeout`. The clock is injected, so tests advance a fake
clock instead of sleeping. A breaker is meant for one event loop; it is not thread-safe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol, TypeVar

from policies._control_flow import is_control_flow
from state import CircuitOpenError, InvalidInputError

T = TypeVar("T")


class CircuitState(StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    """Calls go through; consecutive failures are counted."""
    OPEN = "open"
    """Calls fail fast with `CircuitOpenError` until the timeout has passed."""
    HALF_OPEN = "half_open"
    """One trial call goes through; its outcome closes or re-opens the circuit."""


class CircuitListener(Protocol):
    """Called on every state change of a breaker, e.g. to update a metric or the audit trail.

    Arguments are keyword-only so that more can be added later; accept `**_` to stay
    compatible.
    """

    def __call__(self, *, name: str, old: CircuitState, new: CircuitState) -> None:
        """Observe that breaker `name` moved from `old` to `new`."""


def _validate(failure_threshold: int, timeout: float) -> None:
    if isinstance(failure_threshold, bool) or failure_threshold < 1:
        raise InvalidInputError(
            f"failure_threshold must be a whole number of at least 1, got {failure_threshold!r};"
            " pass failure_threshold=5 (the default) or another positive count"
        )
    if not (timeout > 0 and math.isfinite(timeout)):
        raise InvalidInputError(
            f"circuit breaker timeout must be a positive number of seconds, got {timeout!r};"
            " pass timeout=30.0 (the default) or another positive value"
        )


class CircuitBreaker:
    """Guards one action: fails fast while the action is known to be failing.

    Example:
        ```python
        breaker = CircuitBreaker("credit_check", failure_threshold=3, timeout=60)
        result = await breaker.call(lambda: credit_check(applicant_id="A-1"))
        CircuitBreaker(failure_threshold=5, timeout=30)   # the name is optional
        ```

    `call` is the usual entry point. Code that needs to run the action itself uses
    `before_call()` and then exactly one of `record_success()`, `record_failure()` or
    `record_cancelled()`.
    """

    def __init__(
        self,
        name: str = "circuit",
        *,
        failure_threshold: int = 5,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: CircuitListener | None = None,
    ) -> None:
        _validate(failure_threshold, timeout)
        self.name = name
        """The action this breaker guards (default `circuit`); it appears in
        `CircuitOpenError`."""
        self.failure_threshold = failure_threshold
        """Consecutive failures that open the circuit."""
        self.timeout = timeout
        """Seconds the circuit stays open before it lets a trial call through."""
        self._clock = clock
        self._on_state_change = on_state_change
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value!r})"

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit whose timeout has passed reads as half-open."""
        return self._refresh()

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted since the last success (0 once the circuit closes)."""
        return self._failures

    def before_call(self) -> None:
        """Let a call through, or raise `CircuitOpenError` without calling anything.

        In half-open state the first caller becomes the trial; the others fail fast until
        the trial's outcome is recorded. `retry_after` is the time left before the next
        trial, or 0 while a trial is in flight.
        """
        state = self._refresh()
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.OPEN:
            retry_after = self._opened_at + self.timeout - self._clock()
            raise CircuitOpenError(self.name, max(0.0, retry_after))
        if self._trial_in_flight:
            raise CircuitOpenError(self.name, 0.0)
        self._trial_in_flight = True

    def record_success(self) -> None:
        """Record that a call succeeded: the failure count resets and a trial closes it."""
        state = self._refresh()
        if state is CircuitState.OPEN:
            return  # a call that started before the circuit opened; the timeout stands
        self._failures = 0
        self._trial_in_flight = False
        self._transition(CircuitState.CLOSED)

    def record_failure(self) -> None:
        """Record that a call failed: it counts towards opening, and a failed trial re-opens."""
        state = self._refresh()
        if state is CircuitState.OPEN:
            return  # a call that started before the circuit opened; the timeout stands
        self._failures += 1
        if state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._open()

    def record_cancelled(self) -> None:
        """Record that a call ended without an outcome (cancelled or interrupted).

        Nothing is counted; a half-open breaker lets the next caller be the trial.
        """
        self._trial_in_flight = False

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await `fn()` through the breaker and return its result.

        Raises `CircuitOpenError` without calling `fn` when the circuit is open. Any
        `Exception` from `fn` counts as a failure and is re-raised; control flow
        (cancellation, LangGraph interrupts) counts as nothing.
        """
        self.before_call()
        try:
            result = await fn()
        except BaseException as exc:
            if is_control_flow(exc):
                self.record_cancelled()
            else:
                self.record_failure()
            raise
        self.record_success()
        return result

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._trial_in_flight = False
        self._transition(CircuitState.OPEN)

    def _refresh(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.timeout:
            self._transition(CircuitState.HALF_OPEN)
        return self._state

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        if self._on_state_change is not None:
            self._on_state_change(name=self.name, old=old, new=new)


class CircuitBreakers:
    """Hands out one `CircuitBreaker` per action name, all with the same settings.

    Example:
        ```python
        breakers = CircuitBreakers(failure_threshold=5, timeout=30)
        await breakers.get("credit_check").call(lambda: credit_check(applicant_id="A-1"))
        breakers.states()  # {"credit_check": CircuitState.CLOSED}
        ```
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: CircuitListener | None = None,
    ) -> None:
        _validate(failure_threshold, timeout)
        self.failure_threshold = failure_threshold
        """Consecutive failures that open each breaker."""
        self.timeout = timeout
        """Seconds each breaker stays open before a trial call."""
        self._clock = clock
        self._on_state_change = on_state_change
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        """Return the breaker for action `name`, creating it closed on first use."""
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(
                name,
                failure_threshold=self.failure_threshold,
                timeout=self.timeout,
                clock=self._clock,
                on_state_change=self._on_state_change,
            )
            self._breakers[name] = breaker
        return breaker

    def states(self) -> dict[str, CircuitState]:
        """Return the current state of every breaker handed out so far, by action name."""
        return {name: breaker.state for name, breaker in self._breakers.items()}
