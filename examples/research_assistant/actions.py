"""Actions and agents of the research assistant.

Every model here is a `ScriptedChatModel` (offline, deterministic) until you change `MODEL`
to a provider string such as `"openai:gpt-4o-mini"` or `"anthropic:claude-sonnet-4-5"`
(install its package, e.g. `pip install langchain-openai`, and set its API key).
"""

from __future__ import annotations

import json
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from orchestrator import ActionRegistry
from orchestrator.testing import ScriptedChatModel

MODEL = "scripted"
"""The one string to change: "scripted" (offline) or "provider:model" for a real model."""

registry = ActionRegistry()

_LIBRARY = {
    "cost": "Heat pumps cost 8-15k EUR installed; subsidies cover up to 40 percent.",
    "efficiency": "A heat pump delivers 3-4 kWh of heat per kWh of electricity (COP 3-4).",
    "climate": "Modern heat pumps keep working down to -20 C outdoor temperature.",
    "noise": "Outdoor units run at 40-55 dB, about as loud as a quiet office.",
}


@tool
def search(query: str) -> str:
    """Search the research library for a query; returns the best matching note."""
    words = set(query.lower().split())
    best = max(
        _LIBRARY,
        key=lambda key: (key in words, len(words & set(_LIBRARY[key].lower().split()))),
    )
    return _LIBRARY[best]


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


@registry.action("write_brief")
def write_brief(results: list[dict[str, Any]], subtasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the researchers' notes into one brief."""
    lines = [f"- {r['answer']}" for r in results]
    questions = [s["input"]["question"] for s in subtasks]
    return {"text": "\n".join(lines), "sources": questions}


registry.add_tool(word_count)


def _text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else str(message.content)


def _plan(messages: list[BaseMessage]) -> dict[str, Any]:
    topic = _text(messages[-1])
    angles = ["cost", "efficiency", "climate"]
    return {
        "subtasks": [
            {"capability": "researcher", "input": {"question": f"{topic}: {a}"}} for a in angles
        ]
    }


def _research(messages: list[BaseMessage]) -> AIMessage:
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(content=f"{_text(last)}")
    question = _text(last)
    call = {"name": "search", "args": {"query": question}, "id": f"search-{len(messages)}"}
    return AIMessage(content="", tool_calls=[call])


def _edit(messages: list[BaseMessage]) -> AIMessage:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        call = {"name": "word_count", "args": {"text": _text(last)}, "id": "count-1"}
        return AIMessage(content="Checking the length first.", tool_calls=[call])
    brief = next(_text(m) for m in messages if isinstance(m, HumanMessage))
    words = json.loads(_text(last)) if _text(last).isdigit() else _text(last)
    return AIMessage(content=f"Heat pumps in brief ({words} words):\n{brief}")


def _model(script: Any) -> Any:
    return ScriptedChatModel(script=[script]) if MODEL == "scripted" else MODEL


registry.add_agent("planner", _model(_plan), description="splits a topic into questions")
registry.add_agent("research_model", _model(_research), description="answers from the library")
registry.add_agent("editor", _model(_edit), description="checks and polishes a brief")


@registry.action("researcher")
async def researcher(question: str) -> dict[str, Any]:
    """Search the library and summarise the answer to one question (a LangChain agent)."""
    agent = create_agent(
        registry.agent("research_model"),  # created on first use: no provider at import
        [search],
        system_prompt="Answer the question from the library in one sentence. Use `search`.",
    )
    final = await agent.ainvoke({"messages": [HumanMessage(question)]})
    replies = [m for m in final["messages"] if isinstance(m, AIMessage)]
    tokens = sum((m.usage_metadata or {}).get("total_tokens", 0) for m in replies)
    # `usage` in a worker's output counts against the run's token budget
    return {"answer": replies[-1].text, "usage": {"total_tokens": tokens}}
