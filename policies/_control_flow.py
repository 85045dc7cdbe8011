"""Which exceptions are control flow rather than failures.

Cancellation, interpreter exit and LangGraph's own signals (an `interrupt()` waiting for a
human, a `Command` to a parent graph) travel as exceptions, but they are not failures: a retry
loop must never retry them and a circuit breaker must never count them.
"""

from __future__ import annotations

from langgraph.errors import GraphBubbleUp


def is_control_flow(exc: BaseException) -> bool:
    """Return True when `exc` is a signal to pass on untouched, not a failure to handle.

    That is every `BaseException` that is not an `Exception` (`asyncio.CancelledError`,
    `KeyboardInterrupt`, `SystemExit`, `GeneratorExit`) and every LangGraph
    `GraphBubbleUp` (`GraphInterrupt`, `ParentCommand`, ...).

    Example:
        `is_control_flow(asyncio.CancelledError())` is True; `is_control_flow(ValueError())`
        is False.
    """
    return not isinstance(exc, Exception) or isinstance(exc, GraphBubbleUp)
