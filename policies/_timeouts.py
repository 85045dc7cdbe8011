"""Timeouts: cutting off one step attempt, and the deadline of a whole run.

A step's limit is enforced with `asyncio.timeout` around the awaited work. A run's limit is a
`Deadline`, a value that answers "how long is left?" for a time the caller passes in, so the
clock stays injected and the value can be rebuilt from the run's recorded start time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from state import InvalidInputError, StepTimeoutError

T = TypeVar("T")

_OVERRUN_NOTED = 0.5
"""Seconds past its limit after which a timed-out attempt's overrun is worth reporting."""


async def run_with_timeout(awaitable: Awaitable[T], seconds: float | None, *, step_id: str) -> T:
    """Await `awaitable` and return its result, cutting it off after `seconds`.

    `None` means no limit. A limit of zero or less expires at the first point where the work
    waits. When the limit expires the work is cancelled and `StepTimeoutError` is raised; a
    `TimeoutError` raised by the work itself passes through unchanged. Work that defers its
    cancellation (a thread it must wait for) is awaited to its end first, and the error then
    says by how long it overran.

    Example:
        `await run_with_timeout(fetch_order(order_id), 30.0, step_id="fetch")`
    """
    if seconds is None:
        return await awaitable
    limit = asyncio.timeout(seconds)
    started = time.monotonic()
    try:
        async with limit:
            return await awaitable
    except TimeoutError as exc:
        if not limit.expired():
            raise
        # work that cannot be stopped (a sync action in a thread) is waited for: say how long
        overrun = time.monotonic() - started - max(seconds, 0.0)
        if overrun > _OVERRUN_NOTED:
            raise StepTimeoutError(
                f"step '{step_id}' timed out after {max(seconds, 0.0):g}s; its sync action could"
                f" not be stopped and ran {overrun:.1f}s past the limit before the step gave up"
                " (set `isolation: process` on the step to have it killed, or raise `timeout`)"
            ) from exc
        raise StepTimeoutError(
            f"step '{step_id}' timed out after {max(seconds, 0.0):g}s and was cancelled;"
            " raise `timeout` in the step definition if it needs longer"
        ) from exc


@dataclass(frozen=True, slots=True)
class Deadline:
    """The time limit of a whole run, measured on a clock the caller reads.

    Example:
        ```python
        deadline = Deadline(started_at=clock(), seconds=workflow.timeout)
        if deadline.expired(clock()):
            ...  # the run times out
        limit = deadline.cap(step.timeout, clock())  # never outlive the run
        ```
    """

    started_at: float
    """When the run started, on the same clock as the `now` passed to the methods."""
    seconds: float | None
    """How long the run may take, in seconds; None means no limit."""

    def __post_init__(self) -> None:
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise InvalidInputError(
                f"a run deadline must be a positive number of seconds or None, got"
                f" {self.seconds!r}; set the workflow `timeout` to a positive value or leave"
                " it unset"
            )

    @property
    def expires_at(self) -> float | None:
        """The clock reading at which the run times out, or None without a limit."""
        return None if self.seconds is None else self.started_at + self.seconds

    def remaining(self, now: float) -> float | None:
        """Seconds left at `now` (never below 0), or None without a limit."""
        expires_at = self.expires_at
        return None if expires_at is None else max(0.0, expires_at - now)

    def expired(self, now: float) -> bool:
        """Whether the run's time is up at `now`."""
        expires_at = self.expires_at
        return expires_at is not None and now >= expires_at

    def cap(self, seconds: float | None, now: float) -> float | None:
        """The smaller of a step's limit `seconds` and the time left at `now` (None: neither)."""
        remaining = self.remaining(now)
        if remaining is None:
            return seconds
        return remaining if seconds is None else min(seconds, remaining)
