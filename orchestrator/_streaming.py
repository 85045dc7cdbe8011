"""Streaming a run (`orch.astream`) and merging a caller's `RunnableConfig` into a run's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.runnables import RunnableConfig

from state import InvalidInputError

if TYPE_CHECKING:
    from orchestrator._run import RunResult

StreamMode = Literal["values", "updates", "custom", "messages", "debug", "checkpoints", "tasks"]
"""LangGraph's stream modes; `custom` carries the step events."""

MODES = frozenset(StreamMode.__args__)  # type: ignore[attr-defined]
_PASSED = ("callbacks", "tags", "metadata", "run_name", "recursion_limit", "max_concurrency")
_DONE = object()


def merge_caller_config(config: RunnableConfig, caller: RunnableConfig | None) -> RunnableConfig:
    """The run's config with the caller's callbacks, tags, metadata, run name, recursion limit
    and concurrency; `configurable` keys merge, and the run's own (`thread_id`) win."""
    if not caller:
        return config
    unknown = set(caller) - {*_PASSED, "configurable"}
    if unknown:
        raise InvalidInputError(
            f"config keys {', '.join(sorted(unknown))} cannot be passed to a run; pass any of "
            f"{', '.join((*_PASSED, 'configurable'))}"
        )
    configurable = dict(caller.get("configurable") or {})
    if "thread_id" in configurable:
        raise InvalidInputError(
            "config['configurable']['thread_id'] is the run id: pass run_id=... instead"
        )
    merged = dict(config)
    merged.update({key: caller[key] for key in _PASSED if key in caller})  # type: ignore[literal-required]
    merged["configurable"] = {**configurable, **config.get("configurable", {})}
    return cast(RunnableConfig, merged)


class StreamSink:
    """Carries a run's stream chunks from the task driving it to the caller's iterator."""

    def __init__(self, stream_mode: StreamMode | Sequence[StreamMode]) -> None:
        self.single = isinstance(stream_mode, str)
        if isinstance(stream_mode, str):
            self.modes: list[StreamMode] = [stream_mode]
        else:
            self.modes = list(stream_mode)
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise InvalidInputError(
                f"unknown stream_mode {', '.join(map(repr, bad)) or '[]'}; use any of "
                f"{', '.join(sorted(MODES))}"
            )
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, chunk: Any) -> None:
        """A `(mode, data)` chunk from LangGraph (the graph always streams a list of modes)."""
        self.queue.put_nowait(chunk)

    def _shape(self, chunk: tuple[str, Any]) -> Any:
        return chunk[1] if self.single else chunk

    async def drain(self, task: asyncio.Task[RunResult]) -> AsyncIterator[Any]:
        """Yield chunks until `task` ends, then (with `custom`) its `run_result` event."""
        task.add_done_callback(lambda _: self.queue.put_nowait(_DONE))
        try:
            while (item := await self.queue.get()) is not _DONE:
                yield self._shape(item)
            run = task.result()  # the run's own error, if any, reaches the caller here
            if "custom" in self.modes:
                yield self._shape(("custom", {"event": "run_result", **run.to_json()}))
        finally:
            if not task.done():  # the caller stopped iterating early: stop driving the run
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
