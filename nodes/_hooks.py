"""`RunHooks`: where observability plugs into the nodes (metrics, audit, tracing).

Every method takes keyword-only arguments and ignores the ones it does not know, so hooks can
grow without breaking implementations. Hooks run inside nodes; a node that LangGraph replays
(after a crash or an approval) calls them again, so they are at-least-once.
"""

from __future__ import annotations

from typing import Any


class RunHooks:
    """No-op hooks; subclass and override what you need."""

    def on_decision(
        self,
        *,
        workflow_id: str,
        run_id: str,
        strategy: str,
        ready: list[str],
        complexity: float,
        **_: Any,
    ) -> None:
        """The orchestrator chose the next steps (strategy: sequential, parallel, mixed)."""

    def on_step(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        step_type: str,
        status: str,
        duration: float,
        attempts: int,
        **_: Any,
    ) -> None:
        """A step (or a container's child) finished: completed, failed or skipped."""

    def on_run_finished(
        self, *, workflow_id: str, run_id: str, status: str, duration: float, **_: Any
    ) -> None:
        """A run reached a terminal status."""


NO_HOOKS = RunHooks()
