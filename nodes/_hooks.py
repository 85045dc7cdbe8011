"""`RunHooks`: where observability plugs into the run (metrics, audit ledger, tracing).

Every method takes keyword-only arguments and ignores the ones it does not know, so hooks can
grow without breaking implementations. Node-level hooks run inside nodes; a node that
LangGraph replays (after a crash or an approval) calls them again, so they are at-least-once.
Facade-level hooks (approvals, rollback) are called once per user action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RunHooks:
    """No-op hooks; subclass and override what you need."""

    def on_run_started(self, *, workflow_id: str, run_id: str, **_: Any) -> None:
        """A run began (first entry of the orchestrator node)."""

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
        """The orchestrator chose the next steps (strategy: a step type, parallel, mixed).

        Also passed: `work`, the steps and dependency edges the scheduler looked at for this
        decision (`Plan.work`), which stays flat however many steps the run has finished.
        """

    def on_step_started(
        self, *, workflow_id: str, run_id: str, step_id: str, step_type: str, **_: Any
    ) -> None:
        """A step's first attempt is about to run."""

    def on_step_retry(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        attempt: int,
        error: str,
        delay: float,
        **_: Any,
    ) -> None:
        """An attempt failed and the step will be tried again after `delay` seconds."""

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

    def on_cache_hit(
        self, *, workflow_id: str, run_id: str, step_id: str, key: str, **_: Any
    ) -> None:
        """A cacheable step was served from the step cache instead of running."""

    def on_custom_metric(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        name: str,
        kind: str,
        value: float,
        **_: Any,
    ) -> None:
        """A step set one of its `custom_metrics` (kind: gauge, counter or histogram)."""

    def on_model_call(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        model: str,
        duration: float,
        input_tokens: int | None,
        output_tokens: int | None,
        tool_calls: int,
        **_: Any,
    ) -> None:
        """A chat model answered inside a react step (one reason/act iteration)."""

    def on_agent_finished(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        model: str,
        status: str,
        iterations: int,
        tool_calls: int,
        usage: dict[str, int],
        **_: Any,
    ) -> None:
        """An agent step (react) ended: its model calls, tool calls and token usage."""

    def on_plan(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str | None,
        plan: Any,
        repaired: bool,
        **_: Any,
    ) -> None:
        """A planner produced a plan: an orchestrator step's subtasks (`step_id`), or a whole
        generated workflow (`step_id` None, adaptive planning)."""

    def on_route(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        matched: str | None,
        targets: list[str],
        **_: Any,
    ) -> None:
        """A conditional step chose its branch (`matched` is the condition, `else` or None)."""

    def on_compensation(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str,
        action: str,
        status: str,
        **_: Any,
    ) -> None:
        """A compensation (rollback action) of a completed step ran."""

    def on_circuit_change(self, *, name: str, old: str, new: str, **_: Any) -> None:
        """The circuit breaker of an action changed state."""

    def on_approval(
        self, *, workflow_id: str, run_id: str, step_id: str, event: str, actor: str, **_: Any
    ) -> None:
        """An approval was requested or decided (`event`: requested, approved, rejected,
        timed_out)."""

    def on_rollback(self, *, workflow_id: str, run_id: str, to: str, **_: Any) -> None:
        """A run was rolled back to a rollback point."""

    def on_sla_breach(
        self,
        *,
        workflow_id: str,
        run_id: str,
        step_id: str | None,
        target_seconds: float,
        actual_seconds: float,
        enforced: bool,
        **_: Any,
    ) -> None:
        """A step (or, with `step_id` None, the run) took longer than its SLA target."""

    def on_run_finished(
        self, *, workflow_id: str, run_id: str, status: str, duration: float, **_: Any
    ) -> None:
        """A run reached a terminal status."""

    def head(self, run_id: str) -> str | None:  # noqa: ARG002 -- ledgers override it
        """The latest audit hash of a run, kept in state as the chain head (None: no ledger)."""
        return None


class CompositeHooks(RunHooks):
    """Calls several hooks in order."""

    def __init__(self, hooks: Sequence[RunHooks]) -> None:
        self.hooks = list(hooks)

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            members = object.__getattribute__(self, "hooks")

            def fan_out(**kwargs: Any) -> None:
                for hook in members:
                    getattr(hook, name)(**kwargs)

            return fan_out
        return object.__getattribute__(self, name)

    def head(self, run_id: str) -> str | None:
        """The first head any member knows."""
        for hook in self.hooks:
            if (value := hook.head(run_id)) is not None:
                return value
        return None


NO_HOOKS = RunHooks()
