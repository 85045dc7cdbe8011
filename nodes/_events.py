"""Step events on LangGraph's `custom` stream: what `orch.astream(...)` and Studio show.

Every event is a plain dict with `event`, `workflow_id`, `run_id` and, for steps, `step_id`
and `step_type`:

| event | when | extra keys |
|---|---|---|
| `run_started` | the orchestrator node starts the run | |
| `steps_ready` | the orchestrator dispatches steps | `ready`, `strategy` |
| `step_started` | a step's first attempt begins | |
| `step_retry` | an attempt failed; another follows after `delay` s | `attempt`, `error`, `delay` |
| `step_completed`, `step_failed`, `step_skipped` | a step ended | `duration`, `attempts` |
| `step_waiting` | a human approval step waits for people | `approvers`, `min_approvals` |
| `route` | a conditional chose its branch | `matched`, `targets` |
| `model_call` | a chat model answered inside a react step | `model`, token counts |
| `run_finished` | the run reached a terminal status | `status`, `duration` |

Outside a graph run, or when nobody streams `custom`, emitting costs a context lookup.
"""

from __future__ import annotations

from typing import Any

from langgraph.config import get_stream_writer

from nodes._hooks import RunHooks


def emit(event: str, **fields: Any) -> None:
    """Write one event to the run's `custom` stream (no-op outside a graph run)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a runnable context: nobody can be listening
        return
    writer({"event": event, **{k: v for k, v in fields.items() if v is not None}})


class StreamEvents(RunHooks):
    """Hooks that turn what happens in a run into `custom` stream events."""

    def on_run_started(self, *, workflow_id: str, run_id: str, **_: Any) -> None:
        """`run_started`."""
        emit("run_started", workflow_id=workflow_id, run_id=run_id)

    def on_decision(
        self, *, workflow_id: str, run_id: str, strategy: str, ready: list[str], **_: Any
    ) -> None:
        """`steps_ready`."""
        emit("steps_ready", workflow_id=workflow_id, run_id=run_id, ready=ready, strategy=strategy)

    def on_step_started(
        self, *, workflow_id: str, run_id: str, step_id: str, step_type: str, **_: Any
    ) -> None:
        """`step_started`."""
        emit(
            "step_started",
            workflow_id=workflow_id,
            run_id=run_id,
            step_id=step_id,
            step_type=step_type,
        )

    def on_step_retry(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        attempt: int,
        error: str,
        delay: float,
        **_: Any,
    ) -> None:
        """`step_retry`."""
        emit(
            "step_retry",
            workflow_id=workflow_id,
            run_id=run_id,
            step_id=step_id,
            attempt=attempt,
            error=error,
            delay=round(delay, 6),
        )

    def on_step(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        step_type: str,
        status: str,
        duration: float,
        attempts: int,
        error_type: str | None = None,
        **_: Any,
    ) -> None:
        """`step_completed`, `step_failed` or `step_skipped`."""
        emit(
            f"step_{status}",
            workflow_id=workflow_id,
            run_id=run_id,
            step_id=step_id,
            step_type=step_type,
            duration=round(duration, 6),
            attempts=attempts,
            error_type=error_type,
        )

    def on_model_call(
        self, *, workflow_id: str, run_id: str, step_id: str, model: str, **kw: Any
    ) -> None:
        """`model_call`."""
        emit(
            "model_call",
            workflow_id=workflow_id,
            run_id=run_id,
            step_id=step_id,
            model=model,
            input_tokens=kw.get("input_tokens"),
            output_tokens=kw.get("output_tokens"),
            tool_calls=kw.get("tool_calls"),
        )

    def on_route(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        matched: str | None,
        targets: list[str],
        **_: Any,
    ) -> None:
        """`route`."""
        emit(
            "route",
            workflow_id=workflow_id,
            run_id=run_id,
            step_id=step_id,
            step_type="conditional",
            matched=matched,
            targets=targets,
        )

    def on_run_finished(
        self, *, workflow_id: str, run_id: str, status: str, duration: float, **_: Any
    ) -> None:
        """`run_finished`."""
        emit(
            "run_finished",
            workflow_id=workflow_id,
            run_id=run_id,
            status=status,
            duration=round(duration, 6),
        )


STREAM_EVENTS = StreamEvents()
"""The hooks every run has, with or without an orchestrator around the graph (Studio)."""
