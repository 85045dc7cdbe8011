"""`RetryPolicy`: the frozen value object a workflow or step declares; `policies` applies it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from state._field_docs import DocumentedModel

DEFAULT_RETRY_ON: tuple[str, ...] = ("Exception",)


class BackoffStrategy(StrEnum):
    """How the delay grows from one retry to the next."""

    EXPONENTIAL = "exponential"
    """`initial_delay * backoff_multiplier ** (retry - 1)`."""
    LINEAR = "linear"
    """`initial_delay * retry`."""
    FIXED = "fixed"
    """`initial_delay` every time."""


class RetryPolicy(DocumentedModel):
    """How a failing step is retried, and how much failure a fan-out tolerates.

    A workflow's `retry_policy` is the default; a step's `retry_policy` overrides only the
    fields it sets (see `merged_with`).

    Example:
        `RetryPolicy(max_attempts=5, initial_delay=0.2, max_delay=5.0)`;
        `RetryPolicy(max_attempts=3, backoff_strategy="linear")`
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    """Attempts in all, the first included; 1 means no retry."""
    initial_delay: Annotated[float, Field(ge=0)] = 0.5
    """Delay before the first retry, in seconds."""
    max_delay: Annotated[float, Field(ge=0)] = 30.0
    """Upper bound on any single delay, in seconds."""
    backoff_strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    """`exponential`, `linear` or `fixed` (see `BackoffStrategy`)."""
    backoff_multiplier: Annotated[float, Field(ge=1)] = 2.0
    """Each delay is the previous one times this factor (exponential backoff)."""
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Random extra delay, as a fraction of the computed delay (0 disables jitter)."""
    retry_on: tuple[str, ...] = DEFAULT_RETRY_ON
    """Exception class names that are retried (matched against the class and its bases)."""
    no_retry_on: tuple[str, ...] = (
        "CircuitOpenError",
        "WebhookNotAllowedError",
        "ActionNotFoundError",
        "MappingError",
        "TokenBudgetError",
        "PlanError",
        "ModelProviderError",
    )
    """Exception class names never retried, even when `retry_on` matches."""
    parallel_failure_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """A parallel container succeeds when at least this fraction of its children succeed."""
    continue_on_failure: bool = False
    """When true, a step that still fails after its retries is skipped and the run goes on."""

    @model_validator(mode="after")
    def _delays_ordered(self) -> RetryPolicy:
        if self.max_delay < self.initial_delay:
            raise ValueError(
                f"max_delay ({self.max_delay}) is smaller than initial_delay "
                f"({self.initial_delay}); raise max_delay or lower initial_delay"
            )
        return self

    def merged_with(self, override: RetryPolicy | None) -> RetryPolicy:
        """This policy with the fields `override` set explicitly replaced."""
        if override is None:
            return self
        changes = {name: getattr(override, name) for name in override.model_fields_set}
        return self.model_copy(update=changes) if changes else self
