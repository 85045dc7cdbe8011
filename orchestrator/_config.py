"""`OrchestratorConfig`: the typed settings of an `EnterpriseWorkflowOrchestrator`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from state import InvalidInputError


class OrchestratorConfig(BaseModel):
    """What `EnterpriseWorkflowOrchestrator(config)` accepts; unknown keys are refused.

    Example:
        ```python
        EnterpriseWorkflowOrchestrator({"failure_threshold": 5, "timeout": 30, "max_retries": 3})
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_threshold: int = Field(5, ge=1)
    """Consecutive failures of one action that open its circuit breaker."""
    timeout: float = Field(30.0, gt=0)
    """Seconds an open circuit breaker waits before letting one trial call through."""
    max_retries: int | None = Field(None, ge=0)
    """Retries of steps whose workflow sets no `retry_policy.max_attempts` (None: the
    workflow's default)."""
    webhook_allow_hosts: frozenset[str] = frozenset()
    """Hosts webhook steps may call (`host` or `host:port`, `*` for any); none by default."""
    lease_ttl: float | None = Field(None, ge=1)
    """Seconds a run's lease outlives a silent owner (None: `$ORCHESTRATOR_LEASE_TTL` or 30)."""
    max_concurrent_workflows: int | None = Field(None, ge=1)
    """Runs this orchestrator executes at once; extra runs wait for a slot (None: no cap)."""
    max_tokens: int | None = Field(None, ge=1)
    """Default token budget of a run (a workflow's `sla_targets.max_tokens` wins)."""
    limits: dict[str, Any] | None = None
    """`policies.Limits` fields, e.g. `{"max_input_bytes": 100_000}`."""

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> frozenset[str]:
        if isinstance(value, str):
            value = value.split(",")
        return frozenset(str(h).strip().lower() for h in value or () if str(h).strip())

    @classmethod
    def of(cls, config: OrchestratorConfig | Mapping[str, Any] | None) -> OrchestratorConfig:
        """Validate a mapping (or pass a config through); raise `InvalidInputError` naming
        every bad key, with the closest known key for a misspelt one."""
        if isinstance(config, OrchestratorConfig):
            return config
        data = dict(config or {})
        known = sorted(cls.model_fields)
        problems = []
        for key in data:
            if key not in cls.model_fields:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                problems.append(f"unknown key '{key}'{hint}")
        if not problems:
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                problems = [
                    f"'{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
                    for err in exc.errors()
                ]
        raise InvalidInputError(
            "invalid orchestrator config: "
            + "; ".join(problems)
            + f"; known keys: {', '.join(known)}"
        )

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style read, for code written against the dict config of the design."""
        value = getattr(self, key, None)
        return default if value is None else value
