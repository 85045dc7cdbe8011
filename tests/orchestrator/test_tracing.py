"""OpenTelemetry spans of real runs, collected by the SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from orchestrator import ActionRegistry
from orchestrator._tracing import TracingHooks
from state import AdvancedWorkflow


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Finished spans, kept in memory."""
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> TracingHooks:
    """Tracing hooks on a provider of their own (not the global one)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TracingHooks(tracer_provider=provider)


def _registry() -> ActionRegistry:
    registry = ActionRegistry()
    calls = {"n": 0}

    @registry.action("ok")
    async def ok() -> None:
        return None

    @registry.action("flaky_then_broken")
    async def flaky_then_broken() -> None:
        calls["n"] += 1
        raise ConnectionError(f"attempt {calls['n']} reset")

    return registry


def _workflow(*steps: dict[str, Any]) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "traced",
            "workflow_id": "traced",
            "retry_policy": {"max_attempts": 2, "initial_delay": 0, "jitter": 0},
            "steps": list(steps),
        }
    )


async def test_a_run_is_one_span_with_a_child_span_per_step(
    make_orch: Any, tracing: TracingHooks, exporter: InMemorySpanExporter
) -> None:
    """A two-step run exports `step a`, `step b` under `workflow traced`, ids as attributes."""
    wf = _workflow(
        {"step_id": "a", "action": "ok"}, {"step_id": "b", "action": "ok", "dependencies": ["a"]}
    )
    run = await make_orch(_registry(), hooks=[tracing]).execute_workflow(wf, {})
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"workflow traced", "step a", "step b"}
    root = spans["workflow traced"]
    assert root.attributes is not None
    assert root.attributes["orchestrator.run_id"] == run.run_id
    assert root.attributes["orchestrator.status"] == "completed"
    for name in ("step a", "step b"):
        assert spans[name].parent is not None
        assert spans[name].parent.span_id == root.context.span_id
        assert spans[name].attributes is not None
        assert spans[name].attributes["orchestrator.step_type"] == "sequential"


async def test_a_failed_step_span_has_error_status_and_retry_events(
    make_orch: Any, tracing: TracingHooks, exporter: InMemorySpanExporter
) -> None:
    """The failing step's span is an error naming the exception, with one `retry` event."""
    wf = _workflow({"step_id": "s", "action": "flaky_then_broken"})
    await make_orch(_registry(), hooks=[tracing]).execute_workflow(wf, {})
    spans = {span.name: span for span in exporter.get_finished_spans()}
    step = spans["step s"]
    assert step.status.status_code is StatusCode.ERROR
    assert step.status.description == "ConnectionError"
    assert [event.name for event in step.events] == ["retry"]
    assert step.attributes is not None
    assert step.attributes["orchestrator.attempts"] == 2
    assert spans["workflow traced"].status.status_code is StatusCode.ERROR


async def test_a_run_waiting_for_approval_ends_its_span(
    make_orch: Any, tracing: TracingHooks, exporter: InMemorySpanExporter
) -> None:
    """A run that stops for an approval exports its span with status `waiting_approval`."""
    wf = _workflow(
        {"step_id": "a", "action": "ok"},
        {
            "step_id": "sign_off",
            "step_type": "human_approval",
            "dependencies": ["a"],
            "approval": {"approvers": ["dana"]},
        },
    )
    await make_orch(_registry(), hooks=[tracing]).execute_workflow(wf, {})
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert spans["workflow traced"].attributes is not None
    assert spans["workflow traced"].attributes["orchestrator.status"] == "waiting_approval"
    assert [event.name for event in spans["workflow traced"].events] == ["approval"]


async def test_model_calls_get_genai_spans(
    make_orch: Any, tracing: TracingHooks, exporter: InMemorySpanExporter
) -> None:
    """Each chat-model call of a react step is a `chat` span with GenAI attributes."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    reply = AIMessage(
        content="done", usage_metadata={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    )
    registry = ActionRegistry()
    registry.add_agent("llm", GenericFakeChatModel(messages=iter([reply])))
    wf = _workflow({"step_id": "agent", "step_type": "react", "agent_capability": "llm"})
    run = await make_orch(registry, hooks=[tracing]).execute_workflow(wf, {})
    assert run.status.value == "completed"
    chat = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chat) == 1
    attributes = dict(chat[0].attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 3
    step_span = next(s for s in exporter.get_finished_spans() if s.name == "step agent")
    assert chat[0].parent is not None
    assert chat[0].parent.span_id == step_span.context.span_id
