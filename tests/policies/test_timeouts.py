"""Timeouts: cutting off a step attempt, and a run's deadline."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from policies import Deadline, run_with_timeout
from state import InvalidInputError, StepFailedError, StepTimeoutError


async def test_slow_work_is_cut_off() -> None:
    """Work that outlives its limit raises StepTimeoutError naming the step and the limit."""
    with pytest.raises(StepTimeoutError, match=r"step 'slow' timed out after 0.01s.*`timeout`"):
        await run_with_timeout(asyncio.sleep(10), 0.01, step_id="slow")


async def test_step_timeout_is_a_timeout_and_a_step_failure() -> None:
    """StepTimeoutError can be caught as TimeoutError or StepFailedError."""
    with pytest.raises(TimeoutError) as caught:
        await run_with_timeout(asyncio.sleep(10), 0.01, step_id="slow")
    assert isinstance(caught.value, StepFailedError)


async def test_slow_work_is_cancelled() -> None:
    """The work that timed out is cancelled, not left running."""
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(StepTimeoutError):
        await run_with_timeout(slow(), 0.01, step_id="slow")
    assert cancelled.is_set()


async def test_fast_work_returns_its_result() -> None:
    """Work that finishes in time returns its result."""

    async def fast() -> str:
        await asyncio.sleep(0)
        return "done"

    assert await run_with_timeout(fast(), 1.0, step_id="fast") == "done"


async def test_none_means_no_limit() -> None:
    """A limit of None awaits the work without a timeout."""

    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await run_with_timeout(work(), None, step_id="free") == 7


async def test_zero_limit_expires_at_the_first_wait() -> None:
    """A limit of zero or less (a run deadline already passed) expires at once."""
    with pytest.raises(StepTimeoutError, match="after 0s"):
        await run_with_timeout(asyncio.sleep(1), -2.0, step_id="late")


async def test_timeout_error_from_the_work_passes_through() -> None:
    """A TimeoutError the work raises itself is not mistaken for the step timing out."""

    async def upstream_timeout() -> None:
        raise TimeoutError("upstream gateway timed out")

    with pytest.raises(TimeoutError, match="upstream gateway") as caught:
        await run_with_timeout(upstream_timeout(), 5.0, step_id="call")
    assert not isinstance(caught.value, StepTimeoutError)


def test_deadline_remaining() -> None:
    """remaining() is the time left at `now`, never below zero."""
    deadline = Deadline(started_at=100.0, seconds=60.0)
    assert deadline.remaining(130.0) == 30.0
    assert deadline.remaining(500.0) == 0.0


def test_deadline_expired() -> None:
    """expired() turns true when the limit is reached."""
    deadline = Deadline(started_at=100.0, seconds=60.0)
    assert not deadline.expired(159.9)
    assert deadline.expired(160.0)


def test_deadline_without_limit() -> None:
    """Without a limit nothing expires and remaining() is None."""
    deadline = Deadline(started_at=100.0, seconds=None)
    assert deadline.remaining(1e12) is None
    assert not deadline.expired(1e12)
    assert deadline.expires_at is None


def test_deadline_caps_step_limits() -> None:
    """cap() is the smaller of a step's limit and the time left."""
    deadline = Deadline(started_at=100.0, seconds=60.0)
    assert deadline.cap(10.0, 100.0) == 10.0
    assert deadline.cap(30.0, 150.0) == 10.0
    assert deadline.cap(None, 150.0) == 10.0
    assert Deadline(started_at=0.0, seconds=None).cap(None, 5.0) is None


def test_deadline_is_frozen() -> None:
    """A Deadline cannot be changed once made."""
    deadline = Deadline(started_at=100.0, seconds=60.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        deadline.seconds = 5.0  # type: ignore[misc]


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("inf")])
def test_deadline_rejects_bad_limits(seconds: float) -> None:
    """A limit that is not a positive finite number is refused with the fix."""
    with pytest.raises(InvalidInputError, match=r"positive number of seconds or None, got"):
        Deadline(started_at=0.0, seconds=seconds)
