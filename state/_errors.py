"""The one error hierarchy of the project.

Every error a user can meet subclasses `OrchestratorError` and the matching built-in, so
callers can catch either. Messages say what happened, the bad value, and the way out.
"""

from __future__ import annotations

from dataclasses import dataclass


class OrchestratorError(Exception):
    """Root of every error raised by the orchestrator."""


@dataclass(frozen=True, slots=True)
class DefinitionProblem:
    """One problem found in a workflow definition."""

    location: str
    """Where it is, e.g. `steps[2] (charge).dependencies`."""
    message: str
    """What is wrong and how to fix it."""

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class WorkflowDefinitionError(OrchestratorError, ValueError):
    """A workflow definition is invalid; `problems` lists every problem found, not just one."""

    def __init__(self, problems: list[DefinitionProblem], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"invalid workflow definition{where} ({count} {noun}):\n{lines}")


class InvalidInputError(OrchestratorError, ValueError):
    """Run input, a CLI argument or a setting is malformed."""


class ExpressionError(OrchestratorError, ValueError):
    """A condition expression is invalid, unsafe, or failed to evaluate."""


class MappingError(OrchestratorError, ValueError):
    """An input or output mapping path is invalid or could not be applied."""


class ActionNotFoundError(OrchestratorError, LookupError):
    """A step names an action that no registry provides."""


class WorkflowFailedError(OrchestratorError, RuntimeError):
    """A workflow run failed (raised only where the caller asked for it, e.g. Studio)."""


class RendererNotFoundError(OrchestratorError, RuntimeError):
    """No program or library that draws pictures (PNG, SVG) is installed."""


class RunNotFoundError(OrchestratorError, LookupError):
    """No run with this id exists in the checkpointer."""


class RunStateError(OrchestratorError, RuntimeError):
    """The run is in a state where the requested operation is not allowed."""


class RunBusyError(RunStateError):
    """Another process holds the run's lease right now; nothing was changed: retry later."""


class LeaseLostError(RunStateError):
    """This process lost the run's lease (it stalled past the lease's expiry and another
    process took the run over); it stopped advancing the run and nothing was lost."""


class CheckpointerError(OrchestratorError, ValueError):
    """A checkpointer URL is malformed or its database cannot be opened."""


class StepFailedError(OrchestratorError, RuntimeError):
    """A step failed; raised inside the executor and recorded as a failed `StepResult`."""


class StepTimeoutError(StepFailedError, TimeoutError):
    """A step attempt ran longer than its timeout."""


class WorkflowTimeoutError(StepFailedError, TimeoutError):
    """The whole run exceeded the workflow's `timeout`."""


class SlaBreachError(StepFailedError, TimeoutError):
    """A step or the run took longer than its SLA target and `sla_targets.enforce` is on."""


class CircuitOpenError(StepFailedError):
    """The circuit breaker of an action is open; the action was not called."""

    def __init__(self, action: str, retry_after: float) -> None:
        self.action = action
        self.retry_after = retry_after
        super().__init__(
            f"circuit for action '{action}' is open after repeated failures; it was not called."
            f" It will be tried again in {retry_after:.1f}s (half-open)."
        )


class WebhookNotAllowedError(StepFailedError, PermissionError):
    """A webhook targets a host that is not in the allow-list."""


class WebhookError(StepFailedError):
    """A webhook call failed: transport error or a non-2xx response."""


class ModelProviderError(OrchestratorError, ImportError):
    """A model named by string (`"openai:gpt-4o-mini"`) needs a provider package that is not
    installed; the message names the package to install."""


class TokenBudgetError(StepFailedError):
    """A run used more model tokens than `sla_targets.max_tokens` (or the orchestrator's
    `max_tokens`) allows."""


class PlanError(StepFailedError, ValueError):
    """A planner (an orchestrator step or adaptive planning) produced an invalid plan, even
    after its repair round."""
