"""ReAct steps with a scripted chat model that emits real tool calls (the LLM boundary)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

from orchestrator import ActionRegistry
from orchestrator.testing import ScriptedChatModel
from state import AdvancedWorkflow, WorkflowStatus


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's status."""
    return f"order {order_id} shipped"


def _call(name: str, cid: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": cid}


def _workflow(**step: Any) -> AdvancedWorkflow:
    base = {
        "step_id": "agent",
        "step_type": "react",
        "agent_capability": "support_llm",
        "tools": ["lookup_order"],
        "prompt": "You help {input.customer}.",
        "input_mapping": {"question": "input.question"},
        "output_mapping": {"answer": "answer"},
    }
    return AdvancedWorkflow.from_dict({"name": "react", "steps": [{**base, **step}]})


def _setup(script: list[Any], **step: Any) -> tuple[AdvancedWorkflow, ActionRegistry, Any]:
    model = ScriptedChatModel(script=script)
    registry = ActionRegistry()
    registry.add_tool(lookup_order)
    registry.add_agent("support_llm", model)
    return _workflow(**step), registry, model


async def _values(orch: Any, run_id: str) -> dict[str, Any]:
    state = await orch.graph.aget_state({"configurable": {"thread_id": run_id}})
    return dict(state.values)


async def test_react_calls_tool_and_answers(make_orch: Any) -> None:
    """The model's tool call runs the tool; its observation feeds the final answer."""
    call = AIMessage(content="looking", tool_calls=[_call("lookup_order", "c1", order_id="42")])
    wf, registry, model = _setup([call, "It shipped."])
    run = await make_orch(registry).execute_workflow(
        wf, {"customer": "Ada", "question": "Where is order 42?"}
    )
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["answer"] == "It shipped."
    second_turn = model.calls[1]
    assert isinstance(second_turn[-1], ToolMessage)
    assert second_turn[-1].content == "order 42 shipped"
    assert second_turn[0].content == "You help Ada."


async def test_react_trace_keeps_calls_observations_and_usage(make_orch: Any) -> None:
    """The output keeps thoughts, tool calls, observations and token usage per turn."""
    call = AIMessage(content="checking", tool_calls=[_call("lookup_order", "c7", order_id="7")])
    wf, registry, _ = _setup([call, "done"])
    orch = make_orch(registry)
    run = await orch.execute_workflow(wf, {"customer": "Bo", "question": "order 7?"})
    values = await _values(orch, run.run_id)
    out = values["intermediate_results"]["agent"]
    assert out["trace"][0]["thought"] == "checking"
    assert out["trace"][0]["tool_calls"] == [
        {"id": "c7", "name": "lookup_order", "args": {"order_id": "7"}}
    ]
    assert out["trace"][0]["observations"][0]["content"] == "order 7 shipped"
    assert out["iterations"] == 2
    assert out["usage"]["model_calls"] == 2
    assert values["token_usage"]["total_tokens"] == out["usage"]["total_tokens"] > 0
    trail = await orch.audit_trail(run.run_id)
    summary = [e for e in trail if e["event"] == "agent_finished"]
    assert summary[0]["data"]["model_calls"] == 2
    assert summary[0]["data"]["tool_calls"] == 1


async def test_react_tool_error_goes_back_to_the_model(make_orch: Any) -> None:
    """A tool that raises becomes an error observation; the model recovers and answers."""

    @tool
    def flaky_lookup(order_id: str) -> str:
        """Look up an order, but the backend is down."""
        raise RuntimeError("backend down")

    script = [AIMessage("", tool_calls=[_call("flaky_lookup", "c1", order_id="1")]), "Sorry."]
    wf, registry, model = _setup(script, tools=["flaky_lookup"])
    registry.add_tool(flaky_lookup)
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.COMPLETED
    observation = model.calls[1][-1]
    assert isinstance(observation, ToolMessage)
    assert observation.status == "error"
    assert "RuntimeError: backend down" in str(observation.content)


async def test_react_runs_one_turns_tool_calls_concurrently(make_orch: Any) -> None:
    """Several tool calls of one turn run at the same time."""
    running, peak = [0], [0]

    @tool
    async def slow_lookup(order_id: str) -> str:
        """Look up slowly."""
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.2)
        running[0] -= 1
        return order_id

    calls = [_call("slow_lookup", f"c{i}", order_id=str(i)) for i in range(3)]
    wf, registry, _ = _setup([AIMessage("", tool_calls=calls), "ok"], tools=["slow_lookup"])
    registry.add_tool(slow_lookup)
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.COMPLETED
    assert peak[0] == 3


async def test_react_stops_at_max_iterations(make_orch: Any) -> None:
    """A model that never answers fails the step after max_iterations model calls."""
    call = AIMessage("again", tool_calls=[_call("lookup_order", "c1", order_id="1")])
    wf, registry, model = _setup([call], max_iterations=3)
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "max_iterations=3" in run.error["message"]
    assert len(model.calls) == 3


async def test_react_partial_answer_on_limit(make_orch: Any) -> None:
    """`on_limit: partial` completes with the last thought and a compliance flag."""
    call = AIMessage("still thinking", tool_calls=[_call("lookup_order", "c1", order_id="1")])
    wf, registry, _ = _setup([call], max_iterations=2, on_limit="partial")
    orch = make_orch(registry)
    run = await orch.execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["answer"] == "still thinking"
    assert "iteration_limit_reached" in (await _values(orch, run.run_id))["compliance_flags"]


async def test_react_structured_output(make_orch: Any) -> None:
    """With `output_schema` the answer is an object matching the schema."""
    schema = {
        "title": "Verdict",
        "type": "object",
        "properties": {"shipped": {"type": "boolean"}, "order": {"type": "string"}},
        "required": ["shipped", "order"],
    }
    wf, registry, _ = _setup(
        ["It shipped.", {"shipped": True, "order": "42"}], output_schema=schema
    )
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "42?"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["answer"] == {"shipped": True, "order": "42"}


async def test_react_retries_a_transient_model_error(make_orch: Any, sleep: Any) -> None:
    """A model raising ConnectionError once is retried under the step's retry policy."""
    wf, registry, model = _setup(
        [ConnectionError("reset by peer"), "fine"],
        retry_policy={"max_attempts": 3, "initial_delay": 0.25, "jitter": 0},
    )
    orch = make_orch(registry)
    run = await orch.execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.COMPLETED
    assert len(model.calls) == 2
    assert sleep.delays == [0.25]
    trail = await orch.audit_trail(run.run_id)
    assert any(e["event"] == "step_retried" for e in trail)


async def test_react_model_call_times_out(make_orch: Any) -> None:
    """A model slower than the step timeout fails the step with StepTimeoutError."""
    model = ScriptedChatModel(script=["late"], delay=3.0)
    registry = ActionRegistry()
    registry.add_tool(lookup_order)
    registry.add_agent("support_llm", model)
    wf = _workflow(timeout=0.3, retry_policy={"max_attempts": 1})
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "StepTimeoutError"


async def test_react_circuit_breaker_counts_model_failures(make_orch: Any) -> None:
    """Model failures open the capability's circuit; the next run fails fast."""
    wf, registry, model = _setup([ConnectionError("down")], retry_policy={"max_attempts": 2})
    orch = make_orch(registry, {"failure_threshold": 2, "timeout": 60})
    first = await orch.execute_workflow(wf, {"customer": "C", "question": "?"})
    second = await orch.execute_workflow(wf, {"customer": "C", "question": "?"})
    assert first.status is WorkflowStatus.FAILED
    assert second.status is WorkflowStatus.FAILED
    assert second.error is not None
    assert second.error["error_type"] == "CircuitOpenError"
    assert len(model.calls) == 2


async def test_token_budget_fails_the_run(make_orch: Any) -> None:
    """A run past `sla_targets.max_tokens` stops calling the model and fails clearly."""
    call = AIMessage("", tool_calls=[_call("lookup_order", "c1", order_id="1")])
    usage = {"input_tokens": 40, "output_tokens": 20, "total_tokens": 60}
    expensive = call.model_copy(update={"usage_metadata": usage})
    wf, registry, model = _setup([expensive], max_iterations=10)
    wf = AdvancedWorkflow.from_dict({**wf.to_data(), "sla_targets": {"max_tokens": 100}})
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "TokenBudgetError"
    assert "budget of 100" in run.error["message"]
    assert len(model.calls) == 2


async def test_orchestrator_default_token_budget(make_orch: Any) -> None:
    """The orchestrator's `max_tokens` applies when the workflow sets no budget."""
    usage = {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10}
    call = AIMessage("", tool_calls=[_call("lookup_order", "c1", order_id="1")])
    wf, registry, model = _setup([call.model_copy(update={"usage_metadata": usage})])
    run = await make_orch(registry, {"max_tokens": 25}).execute_workflow(
        wf, {"customer": "C", "question": "?"}
    )
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "budget of 25" in run.error["message"]
    assert len(model.calls) == 3


async def test_prebuilt_agent_graph_as_react_step(make_orch: Any) -> None:
    """A compiled prebuilt agent registered as the capability runs as the react step."""
    model = ScriptedChatModel(
        script=[AIMessage("", tool_calls=[_call("lookup_order", "c1", order_id="9")]), "Shipped!"]
    )
    with pytest.warns(DeprecationWarning, match="create_react_agent"):
        agent = create_react_agent(model, [lookup_order])
    registry = ActionRegistry()
    registry.add_tool(lookup_order)
    registry.add_agent("support_llm", agent)
    run = await make_orch(registry).execute_workflow(
        _workflow(tools=[]), {"customer": "C", "question": "order 9?"}
    )
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["answer"] == "Shipped!"


async def test_agent_tokens_stream_through_the_graph(make_orch: Any) -> None:
    """stream_mode="messages" of the compiled graph carries the agent's tokens and calls."""
    call = AIMessage("let me check", tool_calls=[_call("lookup_order", "c1", order_id="3")])
    wf, registry, _ = _setup([call, "Order three shipped."])
    orch = make_orch(registry)
    await orch.execute_workflow(wf, {"customer": "C", "question": "warm-up"})
    model = ScriptedChatModel(script=[call, "Order three shipped."])
    registry.add_agent("support_llm", model)
    chunks: list[AIMessageChunk] = []
    async for message, meta in orch.graph.astream(
        {"workflow": wf.to_data(), "context": {"customer": "C", "question": "3?"}},
        {"configurable": {"thread_id": "streamed"}},
        context=orch._services_for(wf),
        stream_mode="messages",
    ):
        assert meta["langgraph_node"] == "react_agent"
        if isinstance(message, AIMessageChunk):
            chunks.append(message)
    text = "".join(str(c.content) for c in chunks)
    assert "let me check" in text
    assert "Order three shipped." in text
    assert any(c.tool_call_chunks for c in chunks)


async def test_tool_results_stream_as_custom_events(make_orch: Any) -> None:
    """Each tool observation of a react step reaches stream_mode="custom"."""
    call = AIMessage("", tool_calls=[_call("lookup_order", "c1", order_id="5")])
    wf, registry, _ = _setup([call, "ok"])
    orch = make_orch(registry)
    await orch.execute_workflow(wf, {"customer": "C", "question": "warm-up"})
    registry.add_agent("support_llm", ScriptedChatModel(script=[call, "ok"]))
    events = [
        event
        async for event in orch.graph.astream(
            {"workflow": wf.to_data(), "context": {"customer": "C", "question": "5?"}},
            {"configurable": {"thread_id": "custom"}},
            context=orch._services_for(wf),
            stream_mode="custom",
        )
        if event["event"] == "tool_result"  # step events share the custom stream
    ]
    assert events == [
        {
            "event": "tool_result",
            "step_id": "agent",
            "tool": "lookup_order",
            "tool_call_id": "c1",
            "status": "success",
            "content": "order 5 shipped",
        }
    ]
