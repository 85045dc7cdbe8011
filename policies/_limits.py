"""Size limits on what comes in from outside: definitions, inputs, webhook replies, run state.

Every limit is a field of one frozen `Limits` value. The orchestrator takes one
(`EnterpriseWorkflowOrchestrator(limits=...)` or `config={"limits": {...}}`); the CLI reads
overrides from `ORCHESTRATOR_LIMIT_<FIELD>` environment variables, e.g.
`ORCHESTRATOR_LIMIT_MAX_DEFINITION_BYTES=5000000`.

Example:
    ```python
    limits = Limits(max_input_bytes=64_000)
    check_value(payload, limits, what="input_data")  # InvalidInputError when too big or deep
    ```
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from state import InvalidInputError

__all__ = ["Limits", "check_value", "json_size", "nesting_depth"]

_ENV_PREFIX = "ORCHESTRATOR_LIMIT_"


@dataclass(frozen=True, slots=True)
class Limits:
    """How much outside data the orchestrator accepts. Each limit is a positive integer."""

    max_definition_bytes: int = 2_000_000
    """Size of a workflow file (YAML or JSON) before it is parsed."""
    max_definition_nodes: int = 200_000
    """Values in a parsed definition with every YAML alias expanded (defeats alias bombs)."""
    max_nesting_depth: int = 64
    """Depth of nested mappings and lists, in definitions, inputs and step outputs."""
    max_input_bytes: int = 1_000_000
    """A run's input, as JSON."""
    max_webhook_response_bytes: int = 10_000_000
    """A webhook reply body; reading stops at the limit and the step fails."""
    max_step_output_bytes: int = 4_000_000
    """One step's output, as JSON (it is stored in the run's state)."""
    max_run_state_bytes: int = 64_000_000
    """All step outputs of one run together, as JSON."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InvalidInputError(
                    f"limit {item.name} must be a positive integer, got {value!r}; fix the "
                    f"`limits` setting or {_ENV_PREFIX}{item.name.upper()}"
                )

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Limits:
        """Defaults, overridden by `ORCHESTRATOR_LIMIT_*` variables, then by `settings`."""
        names = {item.name for item in fields(cls)}
        values: dict[str, Any] = {}
        for name in names:
            raw = (os.environ if environ is None else environ).get(_ENV_PREFIX + name.upper())
            if raw is not None:
                try:
                    values[name] = int(raw.replace("_", ""))
                except ValueError:
                    raise InvalidInputError(
                        f"{_ENV_PREFIX}{name.upper()}={raw!r} is not a whole number of "
                        "bytes/values; set it to a positive integer or unset it"
                    ) from None
        for name, value in (settings or {}).items():
            if name not in names:
                raise InvalidInputError(
                    f"unknown limit {name!r}; known limits: {', '.join(sorted(names))}"
                )
            values[name] = value
        return replace(cls(), **values)


def nesting_depth(value: Any, *, stop_at: int) -> int:
    """Depth of nested mappings/lists in `value` (a scalar is 0), counting no further than
    `stop_at + 1`, without recursion (so hostile depth cannot overflow the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth > stop_at or id(item) in seen:
            if depth > stop_at:
                return depth
            continue
        seen.add(id(item))
        stack.extend((child, depth) for child in children)
    return deepest


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON; NaN and Infinity are refused (they are not JSON)."""
    return len(
        json.dumps(value, separators=(",", ":"), default=str, allow_nan=False).encode("utf-8")
    )


def check_value(value: Any, limits: Limits, *, what: str, max_bytes: int | None = None) -> int:
    """Raise `InvalidInputError` unless `value` is finite JSON within the depth and size limits.

    Returns its JSON size in bytes. `max_bytes` defaults to `limits.max_input_bytes`.
    """
    depth = nesting_depth(value, stop_at=limits.max_nesting_depth)
    if depth > limits.max_nesting_depth:
        raise InvalidInputError(
            f"{what} is nested deeper than {limits.max_nesting_depth} levels; flatten it, or "
            f"raise the limit max_nesting_depth ({_ENV_PREFIX}MAX_NESTING_DEPTH)"
        )
    cap = limits.max_input_bytes if max_bytes is None else max_bytes
    try:
        size = json_size(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"{what} cannot be stored as JSON ({exc}); NaN and Infinity are not allowed (use "
            "null or a string) and values may not contain themselves"
        ) from None
    except RecursionError:
        raise InvalidInputError(f"{what} refers to itself; pass plain data") from None
    if size > cap:
        raise InvalidInputError(
            f"{what} is {size} bytes as JSON, over the limit of {cap}; pass a reference "
            "(a file path or URL) instead of the data, or raise the limit"
        )
    return size
