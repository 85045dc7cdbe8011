"""What an agent is, and how inputs and outputs cross into and out of one.

An agent is anything `agent_capability` names: a LangChain chat model (or an
`init_chat_model` string such as `"openai:gpt-4o-mini"`, created on first use), a compiled
LangGraph graph (a prebuilt agent included), another Runnable, or a plain callable. Chat
models and graphs speak messages; the helpers here turn a step's mapped inputs into messages
and a reply (or a graph's final state) back into plain step output.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langgraph.pregel import Pregel

from state import ModelProviderError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


def instance_of(value: Any, module: str, name: str) -> bool:
    """`isinstance(value, module.name)` without importing `module`: nothing can be an
    instance of a class whose module was never imported (so `import orchestrator` need not
    load LangChain's tools and chat models)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(value, getattr(loaded, name))


def is_tool(value: Any) -> bool:
    """True for a LangChain tool (`BaseTool`)."""
    return instance_of(value, "langchain_core.tools.base", "BaseTool")


class AgentKind(StrEnum):
    """What a registered agent (or action) is, which decides the steps it fits."""

    CHAT_MODEL = "chat_model"
    """A LangChain chat model, or a model string created lazily."""
    GRAPH = "graph"
    """A compiled LangGraph graph, such as a prebuilt ReAct agent."""
    RUNNABLE = "runnable"
    """Any other LangChain Runnable (tools included)."""
    FUNCTION = "function"
    """A plain callable."""


def _providers() -> dict[str, str]:
    """`{provider: module}` of the providers `init_chat_model` knows."""
    try:
        from langchain.chat_models import base
    except ImportError:  # pragma: no cover -- langchain is a dependency
        return {}
    known = getattr(base, "_BUILTIN_PROVIDERS", {})
    return {name: spec[0] for name, spec in known.items()}


def is_model_string(value: Any) -> bool:
    """True for `"provider:model"` strings `init_chat_model` can create (`"ollama:llama3"`)."""
    if not isinstance(value, str) or ":" not in value:
        return False
    provider, _, model = value.partition(":")
    return bool(model) and provider in _providers()


def missing_provider_package(spec: str) -> str | None:
    """The pip package a model string needs when it is not installed (None: it is)."""
    module = _providers().get(spec.partition(":")[0])
    if module is None:
        return None
    top = module.split(".")[0]
    return None if importlib.util.find_spec(top) is not None else top.replace("_", "-")


def create_model(spec: str, name: str) -> BaseChatModel:
    """The chat model of a model string, or a `ModelProviderError` naming what to install."""
    package = missing_provider_package(spec)
    if package is not None:
        raise ModelProviderError(
            f"agent '{name}' is the model '{spec}', which needs the provider package "
            f"{package}; install it with `pip install {package}` (and set its API key)"
        )
    from langchain.chat_models import init_chat_model

    return init_chat_model(spec)


def kind_of(agent: Any) -> AgentKind:
    """The kind of a registered agent or action."""
    if isinstance(agent, str) or instance_of(
        agent, "langchain_core.language_models.chat_models", "BaseChatModel"
    ):
        return AgentKind.CHAT_MODEL
    if isinstance(agent, Pregel):
        return AgentKind.GRAPH
    if isinstance(agent, Runnable) or is_tool(agent):
        return AgentKind.RUNNABLE
    return AgentKind.FUNCTION


def speaks_messages(graph: Pregel[Any, Any, Any, Any]) -> bool:
    """True when a graph's state has a `messages` channel (prebuilt agents do)."""
    return "messages" in graph.channels


def to_messages(inputs: Mapping[str, Any]) -> list[BaseMessage]:
    """A step's mapped inputs as the user turn: `messages` as given, else one human message
    (the lone value, or every input as JSON)."""
    given = inputs.get("messages")
    if isinstance(given, Sequence) and not isinstance(given, str):
        return [m if isinstance(m, BaseMessage) else HumanMessage(str(m)) for m in given]
    for key in ("question", "prompt", "task", "input"):
        if isinstance(inputs.get(key), str) and len(inputs) == 1:
            return [HumanMessage(inputs[key])]
    if len(inputs) == 1:
        (value,) = inputs.values()
        if isinstance(value, str):
            return [HumanMessage(value)]
    text = json.dumps(dict(inputs), default=str) if inputs else "Begin."
    return [HumanMessage(text)]


def usage_of(messages: Sequence[BaseMessage]) -> dict[str, int]:
    """Summed `usage_metadata` of the AI messages, plus `model_calls`."""
    total = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "model_calls": 0}
    for message in messages:
        if isinstance(message, AIMessage):
            total["model_calls"] += 1
            usage: dict[str, Any] = dict(message.usage_metadata or {})
            for key in ("input_tokens", "output_tokens", "total_tokens"):
                total[key] += int(usage.get(key) or 0)
    return total


def trace_of(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The reason/act trace: one entry per model reply with its tool calls, their
    observations and its token usage."""
    trace: list[dict[str, Any]] = []
    by_call: dict[str, dict[str, Any]] = {}
    for message in messages:
        if isinstance(message, AIMessage):
            calls = [
                {"id": c.get("id"), "name": c["name"], "args": c["args"]}
                for c in message.tool_calls
            ]
            entry: dict[str, Any] = {
                "iteration": len(trace) + 1,
                "thought": message.content,
                "tool_calls": calls,
                "observations": [],
            }
            if message.usage_metadata:
                entry["usage"] = dict(message.usage_metadata)
            trace.append(entry)
            by_call.update({str(c["id"]): entry for c in calls})
        elif isinstance(message, ToolMessage) and message.tool_call_id in by_call:
            by_call[message.tool_call_id]["observations"].append(
                {"tool": message.name, "status": message.status, "content": message.content}
            )
    return trace


def answer_of(messages: Sequence[BaseMessage]) -> Any:
    """The text of the last AI message that called no tool (or of the last AI message)."""
    replies = [m for m in messages if isinstance(m, AIMessage)]
    final = [m for m in replies if not m.tool_calls]
    chosen = final[-1] if final else (replies[-1] if replies else None)
    return chosen.text if chosen is not None else None


def reply_output(reply: Any) -> Any:
    """The step output of a chat model (or messages graph) called as an action."""
    if isinstance(reply, Mapping) and isinstance(reply.get("messages"), list):
        messages = reply["messages"]
        out = {"answer": answer_of(messages), "usage": usage_of(messages)}
        if "structured_response" in reply:
            out["structured"] = reply["structured_response"]
        return out
    if isinstance(reply, AIMessage):
        return {"answer": reply.text, "usage": usage_of([reply])}
    return reply
