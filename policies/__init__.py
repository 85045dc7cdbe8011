"""Decisions that wrap a step: retry, circuit breaker, timeouts, expressions and mappings.

Everything here is pure: no graph knowledge, no I/O, and time, sleep and randomness are
injected. `RetryPolicy` and `CircuitOpenError` live in `state` and are re-exported here.
"""

from policies._circuit import (
    CircuitBreaker,
    CircuitBreakers,
    CircuitListener,
    CircuitState,
)
from policies._control_flow import is_control_flow
from policies._expressions import evaluate, evaluate_condition
from policies._limits import Limits, check_value, json_size, nesting_depth
from policies._mappings import check_path, fill_placeholders, map_inputs, map_outputs, resolve_path
from policies._redaction import (
    REDACTED,
    RedactionPolicy,
    configure_redaction,
    is_secret_key,
    redact,
    redact_text,
    redaction_policy,
)
from policies._retry import (
    RetryListener,
    backoff_delay,
    call_with_retry,
    is_retryable,
    retry_delays,
)
from policies._timeouts import Deadline, run_with_timeout
from state import CircuitOpenError, RetryPolicy

__all__ = [
    "REDACTED",
    "CircuitBreaker",
    "CircuitBreakers",
    "CircuitListener",
    "CircuitOpenError",
    "CircuitState",
    "Deadline",
    "Limits",
    "RedactionPolicy",
    "RetryListener",
    "RetryPolicy",
    "backoff_delay",
    "call_with_retry",
    "check_path",
    "check_value",
    "configure_redaction",
    "evaluate",
    "evaluate_condition",
    "fill_placeholders",
    "is_control_flow",
    "is_retryable",
    "is_secret_key",
    "json_size",
    "map_inputs",
    "map_outputs",
    "nesting_depth",
    "redact",
    "redact_text",
    "redaction_policy",
    "resolve_path",
    "retry_delays",
    "run_with_timeout",
]
