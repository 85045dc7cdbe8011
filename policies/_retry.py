"""Applying a `RetryPolicy`: backoff delays, which errors are retried, and the retry loop.

The loop is tenacity's `AsyncRetrying`; this module only translates a `RetryPolicy` into
tenacity's stop, wait and retry strategies, with sleep and randomness injected so tests
assert exact delays without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol, TypeVar, cast

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from policies._control_flow import is_control_flow
from state import BackoffStrategy, RetryPolicy, WorkflowTimeoutError

T = TypeVar("T")


class RetryListener(Protocol):
    """Called before each retry sleep; may be sync or async.

    Arguments are keyword-only so that more can be added later; accept `**_` to stay
    compatible.
    """

    def __call__(
        self, *, attempt: int, error: BaseException, delay: float
    ) -> Awaitable[None] | None:
        """Observe that attempt `attempt` failed with `error`; the next one starts in `delay` s."""


def backoff_delay(
    policy: RetryPolicy, retry: int, *, rng: Callable[[], float] = random.random
) -> float:
    """Return the delay in seconds before retry number `retry` (1 is the first retry).

    The base delay is `initial_delay * backoff_multiplier ** (retry - 1)` (exponential, the
    default; `linear`: `initial_delay * retry`; `fixed`: `initial_delay`), capped at
    `max_delay`; jitter adds `base * jitter * rng()` on top, and the sum is capped at
    `max_delay` again. `rng` returns a float in [0, 1).

    Example:
        With `initial_delay=0.1, backoff_multiplier=2, jitter=0`, retries 1, 2, 3 wait
        0.1, 0.2 and 0.4 seconds.
    """
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, got {retry}; pass the 1-based retry number")
    try:
        if policy.backoff_strategy is BackoffStrategy.FIXED:
            base = policy.initial_delay
        elif policy.backoff_strategy is BackoffStrategy.LINEAR:
            base = policy.initial_delay * retry
        else:
            base = policy.initial_delay * policy.backoff_multiplier ** (retry - 1)
    except OverflowError:
        base = policy.max_delay
    base = min(policy.max_delay, base)
    return min(policy.max_delay, base + base * policy.jitter * rng())


def retry_delays(
    policy: RetryPolicy, *, rng: Callable[[], float] = random.random
) -> Iterator[float]:
    """Yield the delay before each retry the policy allows: `max_attempts - 1` values.

    Example:
        `list(retry_delays(RetryPolicy(max_attempts=4, initial_delay=0.1, jitter=0)))` is
        `[0.1, 0.2, 0.4]`.
    """
    for retry in range(1, policy.max_attempts):
        yield backoff_delay(policy, retry, rng=rng)


def is_retryable(policy: RetryPolicy, exc: BaseException) -> bool:
    """Return True when the policy retries `exc`.

    The names of the exception's class and of all its bases are matched against
    `no_retry_on` (which wins) and then `retry_on`. Both the short name (`TimeoutError`) and
    the qualified name (`httpx.ConnectError`) match. Control flow is never retried:
    cancellation, `KeyboardInterrupt` and LangGraph's `GraphBubbleUp` signals; nor is a
    `WorkflowTimeoutError` (the whole run is out of time).
    """
    if is_control_flow(exc) or isinstance(exc, WorkflowTimeoutError):
        return False  # the run's time is up: another attempt could not finish either
    names = _class_names(type(exc))
    if not names.isdisjoint(policy.no_retry_on):
        return False
    return not names.isdisjoint(policy.retry_on)


def _class_names(cls: type[BaseException]) -> frozenset[str]:
    short = {klass.__name__ for klass in cls.__mro__}
    qualified = {f"{klass.__module__}.{klass.__qualname__}" for klass in cls.__mro__}
    return frozenset(short | qualified)


async def call_with_retry(
    fn: Callable[[int], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: RetryListener | None = None,
) -> T:
    """Await `fn(attempt)` until it succeeds or the policy gives up, and return its result.

    `fn` receives the 1-based attempt number. When an attempt fails with an error the policy
    retries (see `is_retryable`) and attempts remain, `on_retry(attempt=, error=, delay=)` is
    called, then `sleep(delay)` is awaited, then the next attempt starts. Otherwise the error
    is re-raised unchanged, with an `attempts` attribute set to the number of attempts made
    (read it with `getattr(exc, "attempts", 1)`). Control-flow exceptions pass through at
    once and get no `attempts` attribute.

    Example:
        `await call_with_retry(lambda attempt: fetch(order_id), policy, on_retry=log_retry)`
    """
    # The first attempt runs without retry machinery (the hot path: most calls succeed);
    # tenacity takes over for attempts 2..max_attempts only after a retryable failure.
    try:
        return await fn(1)
    except BaseException as exc:
        if is_control_flow(exc) or policy.max_attempts == 1 or not is_retryable(policy, exc):
            if not is_control_flow(exc):
                with contextlib.suppress(AttributeError, TypeError):
                    exc.attempts = 1  # type: ignore[attr-defined]
            raise
        first_delay = backoff_delay(policy, 1, rng=rng)
        if on_retry is not None:
            result = on_retry(attempt=1, error=exc, delay=first_delay)
            if inspect.isawaitable(result):
                await result
    await sleep(first_delay)
    # tenacity does not pass the attempt number to the function it retries, so count here.
    attempts = 1

    async def attempt_once() -> T:
        nonlocal attempts
        attempts += 1
        return await fn(attempts)

    async def before_sleep(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None:
            return
        error = state.outcome.exception()
        if error is None:
            return
        delay = state.upcoming_sleep
        result = on_retry(attempt=state.attempt_number + 1, error=error, delay=delay)
        if inspect.isawaitable(result):
            await result

    # tenacity catches BaseException from each attempt, CancelledError included, and asks the
    # retry predicate; is_retryable refuses control flow, and reraise=True then re-raises the
    # original exception instead of wrapping it in tenacity.RetryError.
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts - 1),
        wait=lambda state: backoff_delay(policy, state.attempt_number + 1, rng=rng),
        retry=retry_if_exception(functools.partial(is_retryable, policy)),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        # AsyncRetrying.__call__ is typed with an unbound return TypeVar; the result is T.
        return cast(T, await retrying(attempt_once))
    except BaseException as exc:
        if not is_control_flow(exc):
            # Some C-level exception types have no __dict__; they simply go without it.
            with contextlib.suppress(AttributeError, TypeError):
                exc.attempts = attempts  # type: ignore[attr-defined]
        raise
