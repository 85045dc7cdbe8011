"""What nodes need from the outside world, passed as the LangGraph runtime context.

Nodes never import `orchestrator`; they talk to actions through the `ActionInvoker` protocol,
which `orchestrator.ActionRegistry` implements. Time, sleep and randomness are injected here so
tests control them.
"""

from __future__ import annotations

import asyncio
import importlib
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import structlog
from langgraph.runtime import Runtime

from nodes._cache import StepCache
from nodes._events import STREAM_EVENTS
from nodes._hooks import RunHooks
from policies import CircuitBreakers, Limits, redact_text
from state import ActionNotFoundError, InvalidInputError


@dataclass(frozen=True, slots=True)
class StepContext:
    """Passed to an action that declares a `ctx` parameter."""

    workflow_id: str
    """Id of the workflow."""
    run_id: str
    """Id of the run."""
    step_id: str
    """Id of the step being run."""
    attempt: int
    """1-based attempt number."""
    idempotency_key: str
    """Stable across retries and crash-resumes of this step: use it to make effects once-only."""
    logger: Any
    """A structlog logger bound to the workflow, run and step ids."""
    metrics: Callable[[str, float], None] | None = None
    """Sets a series the step declares in `custom_metrics` (use `metric(name, value)`)."""

    def metric(self, name: str, value: float) -> None:
        """Set (gauge), add to (counter) or observe (histogram) the step's custom metric `name`.

        ctx.metric("documents_scanned", 42)
        """
        if self.metrics is None:
            raise InvalidInputError(
                f"step '{self.step_id}' cannot record metric '{name}': this context has no "
                "metrics sink (declare the metric in the step's `custom_metrics`)"
            )
        self.metrics(name, value)


@runtime_checkable
class ActionInvoker(Protocol):
    """Runs named actions and hands out agents and tools (implemented by `ActionRegistry`)."""

    def has_action(self, name: str) -> bool:
        """True when an action of this name is registered."""

    async def invoke(
        self,
        name: str,
        inputs: Mapping[str, Any],
        ctx: StepContext,
        *,
        isolation: str = "thread",
    ) -> Any:
        """Run action `name` with `inputs` as keyword arguments (`isolation`: thread|process)."""

    def agent(self, name: str) -> Any:
        """The agent, chat model or runnable registered under `name`."""

    def tool(self, name: str) -> Any:
        """The LangChain tool registered under `name`."""

    def parameters(self, name: str) -> frozenset[str] | None:
        """Keyword arguments action `name` accepts (None: any)."""


@dataclass(frozen=True)
class RunServices:
    """The runtime context of the graph: actions, breakers, clock and settings."""

    actions: ActionInvoker
    """Where actions, agents and tools come from."""
    breakers: CircuitBreakers = field(default_factory=CircuitBreakers)
    """One circuit breaker per action name, shared by every run of an orchestrator."""
    clock: Callable[[], float] = time.time
    """Wall clock in epoch seconds."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """How retries wait."""
    rng: Callable[[], float] = random.random
    """Randomness for backoff jitter."""
    webhook_allow_hosts: frozenset[str] = frozenset()
    """Hosts webhooks may call (`host` or `host:port`; `*` allows any)."""
    http_transport: Any = None
    """Optional httpx transport for webhooks (None: a real network connection)."""
    hooks: RunHooks = STREAM_EVENTS
    """Observability hooks (metrics, audit; step events on the `custom` stream)."""
    max_tokens: int | None = None
    """Default token budget of a run (a workflow's `sla_targets.max_tokens` wins)."""
    control: Callable[[str], str | None] = field(default=lambda _run_id: None)
    """Reads a lifecycle request (`pause`, `cancel`, `cancel_compensate`) for a run, written
    by another process; checked at every step boundary."""
    limits: Limits = field(default_factory=Limits)
    """Size limits on webhook replies and step outputs (see `policies.Limits`)."""
    cache: StepCache | None = None
    """Where `cacheable: true` steps keep their outputs (None: no caching)."""


_DEFAULTS: dict[str, RunServices] = {}
_DEFAULTS_LOCK = threading.Lock()


def services_for(runtime: Runtime[Any] | None, actions_module: str | None) -> RunServices:
    """The run's services; without a context (LangGraph Studio) they come from the workflow's
    `actions` module, built once per process so breakers are shared."""
    context = runtime.context if runtime is not None else None
    if isinstance(context, RunServices):
        return context
    if not actions_module:
        raise ActionNotFoundError(
            "the workflow names no `actions` module and the graph was run without an "
            "ActionRegistry; add `actions: your.module` to the definition"
        )
    with _DEFAULTS_LOCK:
        if actions_module not in _DEFAULTS:
            _DEFAULTS[actions_module] = RunServices(actions=load_actions_module(actions_module))
        return _DEFAULTS[actions_module]


def hooks_of(runtime: Runtime[Any] | None) -> RunHooks:
    """The injected hooks, or stream events only when the graph runs without services."""
    context = runtime.context if runtime is not None else None
    return context.hooks if isinstance(context, RunServices) else STREAM_EVENTS


def control_of(runtime: Runtime[Any] | None) -> Callable[[str], str | None]:
    """The injected lifecycle-request reader, or one that never asks for anything."""
    context = runtime.context if runtime is not None else None
    return context.control if isinstance(context, RunServices) else _no_request


def max_tokens_of(runtime: Runtime[Any] | None) -> int | None:
    """The orchestrator's default token budget (None: unlimited or no services)."""
    context = runtime.context if runtime is not None else None
    return context.max_tokens if isinstance(context, RunServices) else None


def _no_request(_run_id: str) -> str | None:
    return None


def clock_of(runtime: Runtime[Any] | None) -> Callable[[], float]:
    """The injected clock, or `time.time` when the graph runs without services."""
    context = runtime.context if runtime is not None else None
    return context.clock if isinstance(context, RunServices) else time.time


def load_actions_module(module_name: str) -> ActionInvoker:
    """Import `module_name` and return its `registry`."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ActionNotFoundError(
            f"cannot import actions module '{module_name}': {redact_text(str(exc))}; it must be "
            "importable from the current directory (run from the project root or set "
            "PYTHONPATH)"
        ) from None
    except SystemExit as exc:
        # an import that exits would end the caller's process having run nothing
        raise ActionNotFoundError(
            f"actions module '{module_name}' called sys.exit({exc.code!r}) while being "
            "imported; move that call under `if __name__ == '__main__':`"
        ) from None
    except Exception as exc:  # noqa: BLE001 -- any import-time failure is the module's bug
        raise ActionNotFoundError(
            f"actions module '{module_name}' failed while being imported: "
            f"{type(exc).__name__}: {redact_text(str(exc))}; fix the module (import it with "
            f"`python -c 'import {module_name}'` to see the traceback)"
        ) from None
    registry = getattr(module, "registry", None)
    if not isinstance(registry, ActionInvoker):
        raise ActionNotFoundError(
            f"actions module '{module_name}' has no ActionRegistry named `registry`; add "
            "`registry = ActionRegistry()` and register actions on it"
        )
    return registry


def step_logger(*, workflow_id: str, run_id: str, step_id: str | None = None) -> Any:
    """A structlog logger bound to the ids of a run (and step), bound on first use."""
    ids = {"workflow_id": workflow_id, "run_id": run_id}
    if step_id:
        ids["step_id"] = step_id
    return _BoundOnUse(ids)


class _BoundOnUse:
    """A structlog logger bound to `ids` when first used: every step makes one for its
    actions (`ctx.logger`) and most never log, while binding builds a logger each time."""

    __slots__ = ("_ids", "_log")

    def __init__(self, ids: dict[str, str]) -> None:
        self._ids = ids
        self._log: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy and pickle probe dunders; `_log` unset lands here
            raise AttributeError(name)
        if self._log is None:
            self._log = structlog.get_logger("orchestrator").bind(**self._ids)
        return getattr(self._log, name)

    def __repr__(self) -> str:
        return f"<step logger {self._ids}>"
