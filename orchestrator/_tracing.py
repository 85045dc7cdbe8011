"""OpenTelemetry spans per run and per step, when `opentelemetry-api` is installed (`otel`)."""

from __future__ import annotations

import threading
import time
from typing import Any

from nodes import RunHooks
from state import OrchestratorError

TRACER_NAME = "orchestrator"
"""Instrumentation scope of the spans."""


class TracingHooks(RunHooks):
    """Run hooks that emit a span per run (`workflow <id>`) and a child span per step.

    Example:
        ```python
        orch = EnterpriseWorkflowOrchestrator(registry=actions, hooks=[TracingHooks()])
        ```

    Spans go to the global tracer provider unless `tracer_provider` is given. Retries, routing,
    approvals, compensations, rollbacks and SLA breaches become span events. The run's span
    ends when the run finishes or starts waiting for an approval; a run or step that started in
    another process (a run continued after an approval, a replayed step) gets a span that
    starts `duration` seconds before it finished.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            raise OrchestratorError(
                "TracingHooks needs OpenTelemetry: pip install "
                "'enterprise-workflow-orchestrator[otel]' (or opentelemetry-api)"
            ) from None
        self._trace = trace
        self.tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self._lock = threading.Lock()
        self._runs: dict[str, Any] = {}
        self._steps: dict[tuple[str, str], Any] = {}

    def _start(self, name: str, parent: Any, start: float | None, **attributes: Any) -> Any:
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        return self.tracer.start_span(
            name,
            context=context,
            start_time=int(start * 1e9) if start is not None else None,
            attributes={f"orchestrator.{k}": v for k, v in attributes.items() if v is not None},
        )

    def _end(self, span: Any, status: str, error_type: str | None = None) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("orchestrator.status", status)
        if status in ("failed", "cancelled", "timed_out"):
            span.set_status(Status(StatusCode.ERROR, error_type or status))
        span.end()

    def on_run_started(self, *, workflow_id: str, run_id: str, **_: Any) -> None:
        """Open the run's span."""
        span = self._start(
            f"workflow {workflow_id}", None, None, workflow_id=workflow_id, run_id=run_id
        )
        with self._lock:
            self._runs[run_id] = span

    def on_step_started(
        self, *, workflow_id: str, run_id: str, step_id: str, step_type: str, **_: Any
    ) -> None:
        """Open the step's span under the run's."""
        with self._lock:
            parent = self._runs.get(run_id)
        span = self._start(
            f"step {step_id}",
            parent,
            None,
            workflow_id=workflow_id,
            run_id=run_id,
            step_id=step_id,
            step_type=step_type,
        )
        with self._lock:
            self._steps[run_id, step_id] = span

    def on_step_retry(
        self, *, run_id: str, step_id: str, attempt: int, error: str, delay: float, **_: Any
    ) -> None:
        """Record the failed attempt on the step's span."""
        with self._lock:
            span = self._steps.get((run_id, step_id))
        if span is not None:
            span.add_event("retry", {"attempt": attempt, "error": error, "delay": delay})

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
        """Close the step's span (or make one that lasted `duration`)."""
        with self._lock:
            span = self._steps.pop((run_id, step_id), None)
            parent = self._runs.get(run_id)
        if span is None:
            span = self._start(
                f"step {step_id}",
                parent,
                time.time() - duration,
                workflow_id=workflow_id,
                run_id=run_id,
                step_id=step_id,
                step_type=step_type,
            )
        span.set_attribute("orchestrator.attempts", attempts)
        self._end(span, status, error_type)

    def on_model_call(
        self,
        *,
        run_id: str,
        step_id: str,
        model: str,
        duration: float,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        tool_calls: int = 0,
        **_: Any,
    ) -> None:
        """A `chat {model}` span under the step's, with OpenTelemetry GenAI attributes."""
        with self._lock:
            parent = self._steps.get((run_id, step_id)) or self._runs.get(run_id)
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.response.finish_reasons": ["tool_calls" if tool_calls else "stop"],
        }
        if input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
        if output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = output_tokens
        span = self.tracer.start_span(
            f"chat {model}",
            context=context,
            kind=self._trace.SpanKind.CLIENT,
            start_time=int((time.time() - duration) * 1e9),
            attributes=attributes,
        )
        span.end()

    def _event(self, run_id: str, name: str, **attributes: Any) -> None:
        with self._lock:
            span = self._runs.get(run_id)
        if span is not None:
            span.add_event(name, {k: str(v) for k, v in attributes.items() if v is not None})

    def on_route(
        self, *, run_id: str, step_id: str, matched: str | None, targets: list[str], **_: Any
    ) -> None:
        """A `route` event on the run's span."""
        self._event(run_id, "route", step_id=step_id, matched=matched, targets=",".join(targets))

    def on_approval(self, *, run_id: str, step_id: str, event: str, actor: str, **_: Any) -> None:
        """An `approval` event on the run's span; a request also ends the span, since the run
        may continue in another process (which then makes its own span)."""
        self._event(run_id, "approval", step_id=step_id, decision=event, actor=actor)
        if event == "requested":
            with self._lock:
                span = self._runs.pop(run_id, None)
            if span is not None:
                self._end(span, "waiting_approval")

    def on_compensation(
        self, *, run_id: str, step_id: str, action: str, status: str, **_: Any
    ) -> None:
        """A `compensation` event on the run's span."""
        self._event(run_id, "compensation", step_id=step_id, action=action, status=status)

    def on_sla_breach(self, *, run_id: str, step_id: str | None = None, **kw: Any) -> None:
        """An `sla_breach` event on the run's span."""
        self._event(
            run_id,
            "sla_breach",
            step_id=step_id,
            target_seconds=kw.get("target_seconds"),
            actual_seconds=kw.get("actual_seconds"),
        )

    def on_rollback(self, *, run_id: str, to: str, **_: Any) -> None:
        """A `rollback` event on the run's span."""
        self._event(run_id, "rollback", to=to)

    def on_run_finished(
        self, *, workflow_id: str, run_id: str, status: str, duration: float, **_: Any
    ) -> None:
        """Close the run's span (or make one that lasted `duration`)."""
        with self._lock:
            span = self._runs.pop(run_id, None)
            for key in [k for k in self._steps if k[0] == run_id]:
                self._steps.pop(key).end()
        if span is None:
            span = self._start(
                f"workflow {workflow_id}",
                None,
                time.time() - duration,
                workflow_id=workflow_id,
                run_id=run_id,
            )
        self._end(span, status)
