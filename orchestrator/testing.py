"""`ScriptedChatModel`: a chat model that replies from a script, for tests and offline demos.

It is a real LangChain `BaseChatModel`: replies carry real `tool_calls` and
`usage_metadata`, it streams token by token (so `stream_mode="messages"` sees it), and it
supports `bind_tools` and `with_structured_output` (a dict in the script becomes a call of
the structured-output tool). Swap it for a real model by registering a model string instead.

Example:
    ```python
    model = ScriptedChatModel(script=[
        AIMessage("", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "1"}]),
        "Here is the answer.",
    ])
    registry.add_agent("researcher", model)  # later: "openai:gpt-4o-mini" instead of model
    ```
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr

__all__ = ["ScriptedChatModel"]

Reply = AIMessage | str | dict[str, Any] | Exception | Callable[[list[BaseMessage]], Any]
"""A script entry: a message, text, a structured answer (dict), an error to raise, or a
function of the messages returning one of those."""


class ScriptedChatModel(BaseChatModel):
    """Replies with the next entry of `script` (the last one repeats once it runs out)."""

    script: list[Any] = Field(default_factory=list)
    """Replies in order: `AIMessage`, text, a dict (structured output), an exception to
    raise, or a function `(messages) -> reply`."""
    delay: float = 0.0
    """Seconds each call takes (to exercise timeouts)."""
    usage: bool = True
    """Attach `usage_metadata` (words in, words out) when a reply has none."""
    tools_bound: list[str] = Field(default_factory=list)
    """Names of the tools bound to this copy."""
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages of every call so far (shared by copies made by `bind_tools`)."""
        return self._calls

    def bind_tools(self, tools: Sequence[Any], **_: Any) -> ScriptedChatModel:
        """A copy that knows the tools' names (a dict reply calls the last one)."""
        names = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        copy = self.model_copy(update={"tools_bound": names})
        copy._calls = self._calls
        return copy

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        self._calls.append(list(messages))
        if not self.script:
            return self._with_usage(AIMessage(content="OK"), messages)
        entry = self.script[min(len(self._calls), len(self.script)) - 1]
        if callable(entry) and not isinstance(entry, BaseMessage):
            entry = entry(messages)
        if isinstance(entry, Exception):
            raise entry
        if isinstance(entry, str):
            entry = AIMessage(content=entry)
        elif isinstance(entry, dict):
            name = self.tools_bound[-1] if self.tools_bound else "answer"
            call = {"name": name, "args": entry, "id": f"call_{len(self._calls)}"}
            entry = AIMessage(content="", tool_calls=[call])
        return self._with_usage(entry, messages)

    def _with_usage(self, reply: AIMessage, messages: list[BaseMessage]) -> AIMessage:
        if reply.usage_metadata or not self.usage:
            return reply
        words_in = sum(len(str(m.content).split()) for m in messages)
        words_out = len(str(reply.content).split()) + 5 * len(reply.tool_calls)
        usage = {
            "input_tokens": words_in,
            "output_tokens": words_out,
            "total_tokens": words_in + words_out,
        }
        return reply.model_copy(update={"usage_metadata": usage})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = self._next(messages)
        words = str(reply.content).split(" ") if reply.content else []
        for index, word in enumerate(words):
            token = word if index == 0 else f" {word}"
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=reply.id))
            if run_manager is not None:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        chunks = [
            tool_call_chunk(name=c["name"], args=_json(c["args"]), id=c["id"], index=i)
            for i, c in enumerate(reply.tool_calls)
        ]
        last = AIMessageChunk(
            content="",
            id=reply.id,
            tool_call_chunks=chunks,
            usage_metadata=reply.usage_metadata,
            chunk_position="last",
        )
        final = ChatGenerationChunk(message=last)
        if run_manager is not None:
            await run_manager.on_llm_new_token("", chunk=final)
        yield final


def _json(args: dict[str, Any]) -> str:
    return json.dumps(args)
