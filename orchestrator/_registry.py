"""`ActionRegistry`: maps the names steps use to functions, tools, runnables and models."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.runnables import Runnable

from nodes import StepContext
from nodes._agents import (
    AgentKind,
    create_model,
    is_model_string,
    is_tool,
    kind_of,
    missing_provider_package,
    reply_output,
    speaks_messages,
    to_messages,
)
from nodes._isolation import run_in_process, run_in_thread
from state import ActionNotFoundError, MappingError

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

F = TypeVar("F", bound=Callable[..., Any])


def _missing(kind: str, name: str, known: Mapping[str, Any]) -> ActionNotFoundError:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ActionNotFoundError(
        f"no {kind} named '{name}' is registered{hint}; register it with "
        f"`@registry.{'action' if kind == 'action' else 'add_' + kind}(...)`"
    )


class ActionRegistry:
    """Names to callables. Sync functions run in a worker thread, never on the event loop.

    Example:
        ```python
        registry = ActionRegistry()

        @registry.action("credit_check")
        async def credit_check(applicant_id: str, ctx: StepContext) -> dict: ...
        ```
    """

    def __init__(self) -> None:
        self._actions: dict[str, Any] = {}
        self._agents: dict[str, Any] = {}
        self._tools: dict[str, BaseTool] = {}
        self._models: dict[str, Any] = {}
        self._descriptions: dict[str, str] = {}

    def action(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator registering a function (sync or async) under `name` (default: its name)."""

        def register(fn: F) -> F:
            self.register(name or fn.__name__, fn)
            return fn

        return register

    def register(self, name: str, action: Any) -> None:
        """Register a function, LangChain tool or Runnable as action `name`."""
        if not (callable(action) or isinstance(action, Runnable)):
            raise TypeError(
                f"action '{name}' must be a function, tool or Runnable, got {type(action).__name__}"
            )
        self._actions[name] = action
        if is_tool(action):
            self._tools.setdefault(action.name, action)

    def add_tool(self, tool: BaseTool, name: str | None = None) -> BaseTool:
        """Register a LangChain tool for react steps (and as an action of the same name)."""
        self._tools[name or tool.name] = tool
        self._actions.setdefault(name or tool.name, tool)
        return tool

    def add_agent(self, name: str, agent: Any, *, description: str | None = None) -> None:
        """Register an agent as `agent_capability` `name`.

        `agent` is a chat model, an `init_chat_model` string (`"openai:gpt-4o-mini"`,
        `"anthropic:claude-sonnet-4-5"`, `"ollama:llama3"`; created on first use, so importing,
        validating and drawing need no provider package, network or key), a compiled LangGraph
        graph (e.g. a prebuilt agent), a Runnable or a function. `description` tells planners
        what it is for.
        """
        if isinstance(agent, str) and not is_model_string(agent):
            raise TypeError(
                f"agent '{name}' is the string {agent!r}, which is not a model string; use "
                "'provider:model' with a provider init_chat_model knows (e.g. "
                "'openai:gpt-4o-mini', 'anthropic:claude-sonnet-4-5', 'ollama:llama3')"
            )
        if not (isinstance(agent, str | Runnable) or callable(agent)):
            raise TypeError(
                f"agent '{name}' must be a chat model, model string, compiled graph, Runnable "
                f"or function, got {type(agent).__name__}"
            )
        self._agents[name] = agent
        self._models.pop(name, None)
        if description:
            self._descriptions[name] = description

    def has_action(self, name: str) -> bool:
        """True when an action or agent of this name is registered (or `name` is a model
        string)."""
        return name in self._actions or name in self._agents or is_model_string(name)

    def kind(self, name: str) -> AgentKind | None:
        """What `name` is (chat model, graph, runnable, function); None when unknown."""
        if name in self._agents:
            return kind_of(self._agents[name])
        if name in self._actions:
            return kind_of(self._actions[name])
        return AgentKind.CHAT_MODEL if is_model_string(name) else None

    def missing_package(self, name: str) -> str | None:
        """The provider package agent `name` needs and lacks (None: nothing missing)."""
        spec = self._agents.get(name, name)
        return missing_provider_package(spec) if isinstance(spec, str) else None

    @property
    def names(self) -> list[str]:
        """Every registered action name."""
        return sorted(self._actions)

    def describe(self) -> dict[str, str]:
        """`{name: one line}` of every action and agent, for planners choosing among them."""
        out: dict[str, str] = {}
        for name, target in self._actions.items():
            text = getattr(target, "description", None) or inspect.getdoc(target) or ""
            out[name] = f"action. {text.splitlines()[0] if text else ''}".strip()
        for name, agent in self._agents.items():
            text = self._descriptions.get(name) or ""
            out[name] = f"agent ({kind_of(agent).value.replace('_', ' ')}). {text}".strip()
        return out

    @property
    def agent_names(self) -> list[str]:
        """Every registered agent name."""
        return sorted(self._agents)

    def agent(self, name: str) -> Any:
        """The agent or chat model registered under `name` (model strings are created here,
        once)."""
        if name in self._models:
            return self._models[name]
        if name not in self._agents and not is_model_string(name):
            raise _missing("agent", name, self._agents)
        target = self._agents.get(name, name)
        if isinstance(target, str):
            target = self._models[name] = create_model(target, name)
        return target

    def tool(self, name: str) -> Any:
        """The LangChain tool registered under `name`."""
        if name not in self._tools:
            raise _missing("tool", name, self._tools)
        return self._tools[name]

    def parameters(self, name: str) -> frozenset[str] | None:
        """Keyword arguments action `name` accepts (None: any, e.g. `**kwargs` or a Runnable)."""
        target = self._actions.get(name)
        if target is None:
            raise _missing("action", name, self._actions)
        if is_tool(target):
            return frozenset(target.args)
        if isinstance(target, Runnable):
            return None
        params = _signature(target).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
        return frozenset(p.name for p in params if p.name != "ctx")

    async def invoke(
        self,
        name: str,
        inputs: Mapping[str, Any],
        ctx: StepContext,
        *,
        isolation: str = "thread",
    ) -> Any:
        """Run action (or agent) `name` with `inputs` as keyword arguments.

        With `isolation="process"` the action runs in a child process that a timeout kills;
        otherwise async actions run on the loop (cancelled at their next await) and sync ones
        in a worker thread that a timeout waits for (see `nodes._isolation`).
        """
        target = self._actions.get(name)
        if target is None:
            if name in self._agents or is_model_string(name):
                return await self._invoke_agent(name, inputs, ctx)
            raise _missing("action", name, self._actions)
        if isolation == "process":
            if isinstance(target, Runnable):
                return await run_in_process(target.invoke, {"input": dict(inputs)}, name=name)
            return await run_in_process(target, _bind(name, target, inputs, ctx), name=name)
        if isinstance(target, Runnable):
            return await target.ainvoke(dict(inputs))
        kwargs = _bind(name, target, inputs, ctx)
        if _is_async(target):
            return await target(**kwargs)
        result = await run_in_thread(target, kwargs)
        return await result if inspect.isawaitable(result) else result

    async def _invoke_agent(self, name: str, inputs: Mapping[str, Any], ctx: StepContext) -> Any:
        agent = self.agent(name)
        kind = kind_of(agent)
        if kind is AgentKind.CHAT_MODEL:
            return reply_output(await agent.ainvoke(to_messages(inputs)))
        if kind is AgentKind.GRAPH:
            payload = {"messages": to_messages(inputs)} if speaks_messages(agent) else dict(inputs)
            return reply_output(await agent.ainvoke(payload))
        if kind is AgentKind.RUNNABLE:
            return await agent.ainvoke(dict(inputs))
        kwargs = _bind(name, agent, inputs, ctx)
        result = agent(**kwargs) if _is_async(agent) else await run_in_thread(agent, kwargs)
        return await result if inspect.isawaitable(result) else result


def _is_async(fn: Any) -> bool:
    # callable objects with an async __call__ count as async too
    call = type(fn).__call__ if not inspect.isfunction(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


@functools.lru_cache(maxsize=1024)
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def _bind(
    name: str, fn: Callable[..., Any], inputs: Mapping[str, Any], ctx: StepContext
) -> dict[str, Any]:
    sig = _signature(fn)
    kwargs = dict(inputs)
    if "ctx" in sig.parameters:
        kwargs["ctx"] = ctx
    try:
        sig.bind(**kwargs)
    except TypeError as exc:
        params = ", ".join(p for p in sig.parameters if p != "ctx")
        raise MappingError(
            f"action '{name}' cannot take inputs {sorted(inputs)}: {exc}; its parameters are "
            f"({params}); fix the step's input_mapping"
        ) from None
    return kwargs
