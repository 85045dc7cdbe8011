"""`execution_options`: per-run overrides of a definition, and the orchestrator's run cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from state import AdvancedWorkflow, InvalidInputError

EXECUTION_OPTIONS = ("run_id", "timeout", "max_parallel_steps", "global_variables")
"""Keys `execute_workflow(..., execution_options={...})` accepts."""


def apply_options(
    workflow: AdvancedWorkflow, options: Mapping[str, Any] | None
) -> tuple[AdvancedWorkflow, str | None]:
    """`workflow` with the options' overrides (validated again), and the option `run_id`.

    `timeout` and `max_parallel_steps` replace the definition's; `global_variables` are merged
    over its own.
    """
    if options is None:
        return workflow, None
    if not isinstance(options, Mapping):
        raise InvalidInputError(
            f"execution_options must be a mapping, got {type(options).__name__}; pass e.g. "
            "{'timeout': 60}"
        )
    unknown = sorted(set(options) - set(EXECUTION_OPTIONS))
    if unknown:
        raise InvalidInputError(
            f"unknown execution_options {', '.join(map(repr, unknown))}; use "
            f"{', '.join(EXECUTION_OPTIONS)}"
        )
    changes = {k: options[k] for k in ("timeout", "max_parallel_steps") if k in options}
    if "global_variables" in options:
        changes["global_variables"] = {
            **workflow.global_variables,
            **dict(options["global_variables"]),
        }
    if changes:
        workflow = AdvancedWorkflow.from_dict(
            {**workflow.to_data(), **changes}, source="execution_options"
        )
    run_id = options.get("run_id")
    return workflow, str(run_id) if run_id is not None else None


def run_cap(config: Mapping[str, Any]) -> int | None:
    """`max_concurrent_workflows` from an orchestrator config (None: no cap)."""
    value = config.get("max_concurrent_workflows")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(
            f"max_concurrent_workflows must be a whole number of at least 1, got {value!r}; "
            "leave it out for no cap"
        )
    return value


class RunSlots:
    """At most `cap` runs execute at once in this orchestrator; the others wait their turn."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        """The cap (None: unlimited)."""
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.waiting = 0
        """Runs waiting for a slot right now."""

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot while the body runs (waits when every slot is taken)."""
        if self.cap is None:
            yield
            return
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Semaphore(self.cap))
        self.waiting += 1
        try:
            await self._gate[1].acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._gate[1].release()
