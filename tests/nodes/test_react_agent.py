"""ReAct steps with a scripted chat model that emits real tool calls (the LLM boundary)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, WorkflowStatus


class ScriptedChatModel(BaseChatModel):
    """Replies from a script; records the messages it saw."""

    script: list[AIMessage]
    seen: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **_: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        reply = self.script[min(len(self.seen), len(self.script)) - 1]
        return ChatResult(generations=[ChatGeneration(message=reply)])


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's status."""
    return f"order {order_id} shipped"


def _setup(
    script: list[AIMessage], max_iterations: int = 4
) -> tuple[AdvancedWorkflow, ActionRegistry, ScriptedChatModel]:
    model = ScriptedChatModel(script=script, seen=[])
    registry = ActionRegistry()
    registry.add_tool(lookup_order)
    registry.add_agent("support_llm", model)
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "react",
            "steps": [
                {
                    "step_id": "agent",
                    "step_type": "react",
                    "agent_capability": "support_llm",
                    "tools": ["lookup_order"],
                    "prompt": "You help {input.customer}.",
                    "max_iterations": max_iterations,
                    "input_mapping": {"question": "input.question"},
                    "output_mapping": {"answer": "answer"},
                }
            ],
        }
    )
    return wf, registry, model


async def test_react_calls_tool_and_answers(make_orch: Any) -> None:
    """The model's tool call runs the tool; its observation feeds the final answer."""
    call = AIMessage(
        content="I should look it up",
        tool_calls=[{"name": "lookup_order", "args": {"order_id": "42"}, "id": "call-1"}],
    )
    wf, registry, model = _setup([call, AIMessage(content="It shipped.")])
    run = await make_orch(registry).execute_workflow(
        wf, {"customer": "Ada", "question": "Where is order 42?"}
    )
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["answer"] == "It shipped."
    second_turn = model.seen[1]
    assert isinstance(second_turn[-1], ToolMessage)
    assert second_turn[-1].content == "order 42 shipped"
    assert second_turn[0].content == "You help Ada."


async def test_react_trace_records_thoughts_calls_observations(make_orch: Any) -> None:
    """The step output keeps the reason/act trace."""
    call = AIMessage(
        content="checking",
        tool_calls=[{"name": "lookup_order", "args": {"order_id": "7"}, "id": "c7"}],
    )
    wf, registry, _ = _setup([call, AIMessage(content="done")])
    orch = make_orch(registry)
    run = await orch.execute_workflow(wf, {"customer": "Bo", "question": "order 7?"})
    values = (await orch.graph.aget_state({"configurable": {"thread_id": run.run_id}})).values
    trace = values["intermediate_results"]["agent"]["trace"]
    assert trace[0]["thought"] == "checking"
    assert trace[0]["tool_calls"] == [{"name": "lookup_order", "args": {"order_id": "7"}}]
    assert trace[0]["observations"] == ["order 7 shipped"]
    assert values["intermediate_results"]["agent"]["iterations"] == 2


async def test_react_stops_at_max_iterations(make_orch: Any) -> None:
    """A model that never answers fails the step after max_iterations."""
    call = AIMessage(
        content="again",
        tool_calls=[{"name": "lookup_order", "args": {"order_id": "1"}, "id": "c1"}],
    )
    wf, registry, model = _setup([call], max_iterations=3)
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "max_iterations=3" in run.error["message"]
    assert len(model.seen) == 3


async def test_react_unknown_tool_is_reported_to_the_model(make_orch: Any) -> None:
    """A call to a tool the step does not list comes back as an observation, not a crash."""
    call = AIMessage(content="", tool_calls=[{"name": "rm_rf", "args": {}, "id": "x"}])
    wf, registry, model = _setup([call, AIMessage(content="sorry")])
    run = await make_orch(registry).execute_workflow(wf, {"customer": "C", "question": "?"})
    assert run.status is WorkflowStatus.COMPLETED
    assert "unknown tool 'rm_rf'" in str(model.seen[1][-1].content)
