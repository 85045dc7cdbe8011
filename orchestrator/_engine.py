"""`AdvancedWorkflowEngine`: the engine layer of the original design, on the orchestrator.

Code written against the original design builds an engine from a step executor (an
`ActionRegistry`, or anything implementing the `ActionInvoker` protocol) and an optional
monitor, and gets plain dicts back. Every run is an `EnterpriseWorkflowOrchestrator` run:
durable, audited, resumable with the same database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodes import ActionInvoker, RunHooks
from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._run import RunResult
from state import AdvancedWorkflow, InvalidInputError

if TYPE_CHECKING:
    from orchestrator._metrics import MetricsCollector


class AdvancedWorkflowEngine:
    """Executes workflows and answers with plain dicts.

    Example:
        ```python
        engine = AdvancedWorkflowEngine(step_executor=registry, monitor=None)
        out = await engine.execute_workflow(workflow, input_data={"applicant_id": "A-1"})
        out["status"], out["run_id"], out["result"]
        ```

    `monitor` is a `MetricsCollector` (its registry gets the run metrics) or any `RunHooks`;
    `config` is the orchestrator config (`max_concurrent_workflows`, `failure_threshold`,
    ...), `checkpointer` its database URL (default: `$ORCHESTRATOR_DB` or
    `sqlite:///.orchestrator/runs.sqlite`). `engine.orchestrator` is the orchestrator behind it.
    """

    def __init__(
        self,
        step_executor: ActionInvoker | None = None,
        monitor: MetricsCollector | RunHooks | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        checkpointer: str | None = None,
    ) -> None:
        if step_executor is not None and not isinstance(step_executor, ActionInvoker):
            raise InvalidInputError(
                f"step_executor must be an ActionRegistry (or implement ActionInvoker), got "
                f"{type(step_executor).__name__}; register your actions on an ActionRegistry"
            )
        from orchestrator._metrics import MetricsCollector  # Prometheus on first use

        if monitor is not None and not isinstance(monitor, RunHooks):
            raise InvalidInputError(
                f"monitor must be a MetricsCollector or RunHooks, got {type(monitor).__name__}"
            )
        metrics = monitor if isinstance(monitor, MetricsCollector) else None
        hooks = [monitor] if monitor is not None and metrics is None else []
        self.orchestrator = EnterpriseWorkflowOrchestrator(
            config, registry=step_executor, checkpointer=checkpointer, metrics=metrics, hooks=hooks
        )
        """The orchestrator that runs the workflows."""

    async def execute_workflow(
        self,
        workflow: AdvancedWorkflow | Mapping[str, Any] | str | Path,
        input_data: Mapping[str, Any] | None = None,
        execution_options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a workflow until it finishes or waits; the outcome as a plain dict.

        Keys: `workflow_id`, `run_id`, `status`, `result`, `error`, `step_results`,
        `completed_steps`, `failed_steps`, `skipped_steps`, `pending_approval`,
        `started_at`, `finished_at`, `execution_time` (seconds), `error_counts`.
        """
        run = await self.orchestrator.execute_workflow(
            workflow, input_data, execution_options=execution_options
        )
        return self._as_dict(run)

    async def resume(self, run_id: str) -> dict[str, Any]:
        """Continue an interrupted or paused run."""
        return self._as_dict(await self.orchestrator.resume(run_id))

    async def status(self, run_id: str) -> dict[str, Any]:
        """Where a run stands."""
        return self._as_dict(await self.orchestrator.status(run_id))

    async def aclose(self) -> None:
        """Close the database connections."""
        await self.orchestrator.aclose()

    @staticmethod
    def _as_dict(run: RunResult) -> dict[str, Any]:
        elapsed = None
        if run.started_at and run.finished_at:
            start = datetime.fromisoformat(run.started_at)
            elapsed = (datetime.fromisoformat(run.finished_at) - start).total_seconds()
        return {
            **run.to_json(),
            "step_results": run.step_results,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "execution_time": elapsed,
            "error_counts": run.error_counts,
        }
