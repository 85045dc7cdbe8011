"""Where a sync action runs, and what a timeout can do to it there.

- `thread` (the default): a worker thread. Python cannot stop a thread, so when the attempt
  times out the step *waits* for the function to return before it fails or retries; the
  overrun is recorded in the error. An attempt therefore never overlaps its retry, but it
  does run to its end.
- `process`: a child process (forked on POSIX, so closures and test functions work). When
  the attempt times out, or the run is cancelled, the child is killed (SIGKILL) at once: the
  work stops. Its inputs must be picklable only on platforms without `fork`; its return value
  and exceptions travel back pickled (an exception that does not pickle comes back as a
  `RuntimeError` with the same message).

Async actions are cancelled at their next `await` in either case.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import pickle
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["run_in_process", "run_in_thread"]


async def run_in_thread(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call `fn(**kwargs)` in a worker thread; if cancelled, wait for it to return first.

    Waiting is what keeps a timed-out attempt from overlapping its retry (or outliving its
    run): the cancellation is re-raised once the thread is done.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, **kwargs)
    future = loop.run_in_executor(None, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # the thread cannot be stopped: wait for it to return, then let the cancellation on
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise


def _child(conn: Connection, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    try:
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        message: tuple[bool, Any] = (True, result)
    except BaseException as exc:  # noqa: BLE001 -- sent to the parent, which raises it
        message = (False, exc)
    try:
        conn.send(message)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        ok, value = message
        error = f"{type(value).__name__}: {value}" if not ok else f"unpicklable result: {exc}"
        conn.send((False, RuntimeError(error)))
    conn.close()


async def _awaited(result: Any) -> Any:
    return await result


def _context() -> Any:
    import multiprocessing  # loaded by the first process-isolated step, not at import

    return multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")


async def run_in_process(fn: Callable[..., Any], kwargs: Mapping[str, Any], *, name: str) -> Any:
    """Call `fn(**kwargs)` in a child process and return its result (or raise its error).

    Cancelling the awaiting task (a step timeout, a run deadline, a cancelled run) kills the
    child with SIGKILL before the cancellation propagates.
    """
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_child, args=(sender, fn, dict(kwargs)), name=f"action:{name}", daemon=True
    )
    process.start()
    sender.close()
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(receiver.fileno(), wake)
    try:
        await readable
        try:
            ok, value = receiver.recv()
        except EOFError:
            await asyncio.to_thread(process.join)
            raise RuntimeError(
                f"action '{name}' died in its process (exit code {process.exitcode}) without "
                "returning; see its logs"
            ) from None
    finally:
        loop.remove_reader(receiver.fileno())
        if process.is_alive():
            process.kill()  # a timeout or cancellation: the work stops here
        await asyncio.shield(asyncio.to_thread(process.join))
        receiver.close()
    if not ok:
        raise value
    return value
