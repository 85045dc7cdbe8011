"""Model calls under the step's policies, counted against the run's token budget.

Every model call of an agent step (react turns, LLM routing, planners) goes through
`guarded_model_call`: the step runner's policy path (`call_guarded`: retry with backoff,
circuit breaker, timeout per attempt, workflow deadline), a token-budget check before it
starts, and a report to the hooks with its usage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from nodes._step_runner import StepEnv, call_guarded
from state import StepFailedError, TokenBudgetError, WorkflowStep

TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens")


class IterationLimitError(StepFailedError):
    """A react step reached `max_iterations` model calls without a final answer."""

    def __init__(self, message: str, messages: Sequence[BaseMessage]) -> None:
        super().__init__(message)
        self.messages = list(messages)


@dataclass
class TokenMeter:
    """Tokens used by the run before this step, plus this step's calls, against a budget."""

    before: int = 0
    """Total tokens of the run's earlier model calls."""
    budget: int | None = None
    """Most total tokens the run may use (None: unlimited)."""
    used: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_KEYS, 0))
    """This step's usage so far, plus `model_calls`."""

    def check(self, step_id: str) -> None:
        """Refuse the next model call once the run has spent its budget."""
        spent = self.before + self.used["total_tokens"]
        if self.budget is not None and spent >= self.budget:
            raise TokenBudgetError(
                f"the run used {spent} model tokens, reaching its budget of {self.budget} "
                f"(sla_targets.max_tokens) before a model call of step '{step_id}'; raise "
                "max_tokens or make the prompts shorter"
            )

    def add(self, message: AIMessage) -> dict[str, int]:
        """Count one reply's usage; returns it."""
        usage: dict[str, Any] = dict(message.usage_metadata or {})
        counted = {key: int(usage.get(key) or 0) for key in TOKEN_KEYS}
        if not counted["total_tokens"]:
            counted["total_tokens"] = counted["input_tokens"] + counted["output_tokens"]
        for key, value in counted.items():
            self.used[key] += value
        self.used["model_calls"] = self.used.get("model_calls", 0) + 1
        return counted


def model_name(model: Any, fallback: str) -> str:
    """A readable name of a chat model for hooks and metrics."""
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or fallback)


async def guarded_model_call(
    step: WorkflowStep,
    env: StepEnv,
    meter: TokenMeter,
    capability: str,
    call: Callable[[], Awaitable[Any]],
    *,
    name: str,
    on_attempt: Callable[[int], None] | None = None,
) -> Any:
    """One model call under the step's policies and the budget; reports it to the hooks.

    `call` returns an `AIMessage` (or `{"raw": AIMessage, ...}` from structured output)."""
    meter.check(step.step_id)
    asked = env.services.clock()
    result = await call_guarded(step, env, capability, lambda _ctx: call(), on_attempt=on_attempt)
    raw = result.get("raw") if isinstance(result, dict) else result
    counted = meter.add(raw) if isinstance(raw, AIMessage) else dict.fromkeys(TOKEN_KEYS, 0)
    env.services.hooks.on_model_call(
        workflow_id=env.workflow_id,
        run_id=env.run_id,
        step_id=step.step_id,
        model=name,
        duration=env.services.clock() - asked,
        input_tokens=counted["input_tokens"],
        output_tokens=counted["output_tokens"],
        tool_calls=len(raw.tool_calls) if isinstance(raw, AIMessage) else 0,
    )
    return result
