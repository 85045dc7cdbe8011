"""Each step's work as a child run named `step:<id>`, so LangChain callback handlers
(LangSmith, Langfuse, any `BaseCallbackHandler`) show the workflow's shape.

The child run is tagged `workflow:<id>`, `step:<id>` and `step_type:<type>` and carries the
ids as metadata. Actions, models and tools called inside it (a Runnable action, a react
step's model and tools, a chat model called from a plain function) nest under it, because
LangChain passes the child config along in a context variable. Without any handler (no
callbacks passed, no tracing configured) the step runs directly, at no cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManager
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import ensure_config, merge_configs

T = TypeVar("T")


def _listening(config: RunnableConfig) -> bool:
    manager = AsyncCallbackManager.configure(
        config.get("callbacks"), None, False, config.get("tags"), None, config.get("metadata")
    )
    return bool(manager.handlers)


def handlers_listening() -> bool:
    """True when a callback handler (passed, or set up by tracing) would see a step started
    here; siblings started from the same place can share the answer."""
    return _listening(ensure_config())


async def step_run(
    *,
    workflow_id: str,
    run_id: str,
    step_id: str,
    step_type: str,
    inputs: Mapping[str, Any] | None,
    work: Callable[[], Awaitable[T]],
    failure: Callable[[T], BaseException | None] = lambda _: None,
    output: Callable[[T], Any] = lambda value: value,
    listening: bool | None = None,
) -> T:
    """Run `work()` as the child run `step:<step_id>` of the current config.

    `failure(result)` names the error of a result that stands for a failed step (failures are
    data here, not exceptions), so the run shows as failed in the trace; the result itself is
    still returned. `output(result)` is what the trace records as the run's output.
    `listening` is `handlers_listening()` when the caller already knows it.
    """
    if listening is False:
        return await work()
    parent = ensure_config()
    if listening is None and not _listening(parent):
        return await work()
    config = merge_configs(
        parent,
        {
            "run_name": f"step:{step_id}",
            "tags": [f"workflow:{workflow_id}", f"step:{step_id}", f"step_type:{step_type}"],
            "metadata": {
                "workflow_id": workflow_id,
                "run_id": run_id,
                "step_id": step_id,
                "step_type": step_type,
            },
        },
    )
    held: list[T] = []

    async def body(_inputs: Any) -> Any:
        result = await work()
        held.append(result)
        error = failure(result)
        if error is not None:
            raise error
        return output(result)

    try:
        await RunnableLambda(body, name=f"step:{step_id}").ainvoke(dict(inputs or {}), config)
    except BaseException as exc:
        if held and exc is failure(held[0]):
            return held[0]  # the failed step's outcome, now also visible in the trace
        raise
    return held[0]
