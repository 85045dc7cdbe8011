"""`EnterpriseWorkflowOrchestrator`: the run facade users, notebooks and the CLI touch."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from nodes import (
    STREAM_EVENTS,
    ActionInvoker,
    CompositeHooks,
    RunHooks,
    RunServices,
    load_actions_module,
    workflow_from_state,
)
from nodes._dag import SCHEDULE_DAG
from nodes._scheduler import forget_plans
from orchestrator import _decisions as decisions
from orchestrator import _lifecycle as lifecycle
from orchestrator._agent_check import check_agents
from orchestrator._audit import VerifyResult
from orchestrator._audit_hooks import with_audit
from orchestrator._config import OrchestratorConfig
from orchestrator._gc import freeze_long_lived
from orchestrator._graph import build_graph
from orchestrator._live_steps import LiveSteps, with_steps_in_flight
from orchestrator._loader import load_workflow
from orchestrator._options import RunSlots, apply_options, run_cap
from orchestrator._ownership import lease_ttl, owning
from orchestrator._planning import Plan, plan_json, plan_workflow
from orchestrator._registry import ActionRegistry
from orchestrator._run import RunResult
from orchestrator._step_cache import open_step_cache
from orchestrator._streaming import StreamMode, StreamSink, merge_caller_config
from orchestrator.storage import (
    Backend,
    GroupCommitSqliteSaver,
    RunStore,
    backend_of,
    default_db,
    open_checkpointer,
    safe_url,
    sqlite_path,
)
from orchestrator.workers import _detached as detached
from policies import CircuitBreakers, Limits, check_value
from state import (
    AdvancedWorkflow,
    InvalidInputError,
    RunNotFoundError,
    RunStateError,
    WorkflowStatus,
    unpack,
)

if TYPE_CHECKING:
    from orchestrator._metrics import MetricsCollector


class EnterpriseWorkflowOrchestrator:
    """Runs workflows durably on a checkpointer and answers for them.

    Example:
        ```python
        orch = EnterpriseWorkflowOrchestrator(
            {"failure_threshold": 5, "timeout": 30, "max_retries": 3},
            registry=registry, checkpointer="sqlite:///runs.sqlite")
        run = await orch.execute_workflow(workflow, input_data={"applicant_id": "A-1"})
        ```

    `config` is an `OrchestratorConfig` or a mapping of its keys: `failure_threshold` and
    `timeout` (circuit breakers, one per action name, shared by every run of this
    orchestrator), `max_retries` (retries of steps whose workflow sets no `max_attempts`),
    `webhook_allow_hosts` (hosts webhooks may call), `lease_ttl` (seconds a run's lease
    outlives a silent owner; default 30 or `$ORCHESTRATOR_LEASE_TTL`),
    `limits` (`policies.Limits` fields, e.g. `{"max_input_bytes": 100_000}`),
    `max_concurrent_workflows` (runs executing at once; extra runs wait for a slot). An
    unknown key raises `InvalidInputError` with the closest known key.

    Every call that advances a run (`execute_workflow`, `resume`, `approve`, `reject`,
    `cancel`, `rollback`, `sweep`) first takes the run's lease in the database, so exactly one
    process or coroutine advances a run at a time; a call that cannot get it raises
    `RunBusyError` and changes nothing.

    `orch.metrics` is a `MetricsCollector` on a registry of its own (pass `metrics=` to share
    one); serve it with `serve_metrics(orch.metrics.registry, port)`.
    """

    def __init__(
        self,
        config: OrchestratorConfig | Mapping[str, Any] | None = None,
        *,
        registry: ActionInvoker | None = None,
        checkpointer: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        webhook_allow_hosts: Any = None,
        http_transport: Any = None,
        hooks: Sequence[RunHooks] = (),
        metrics: MetricsCollector | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.config = OrchestratorConfig.of(config)
        """The validated settings."""
        self.limits = limits or Limits.from_settings(self.config.get("limits"))
        """Size limits on inputs, webhook replies and step outputs (`config["limits"]`)."""
        self._slots = RunSlots(run_cap(self.config.model_dump()))
        if metrics is None:
            # Prometheus is imported with the first orchestrator, not with `import orchestrator`
            from orchestrator._metrics import MetricsCollector

            metrics = MetricsCollector()
        self.metrics = metrics
        """Prometheus metrics of this orchestrator's runs, on `orch.metrics.registry`."""
        self.checkpointer_url = checkpointer or default_db()
        # compliance is not optional: every orchestrator audits (with the caller's AuditHooks
        # when it passed one, else a ledger in the checkpointer's database)
        members, self.audit = with_audit(hooks, self.checkpointer_url)
        self._live = LiveSteps()
        self.hooks = CompositeHooks([self.metrics, self._live, *members, STREAM_EVENTS])
        self.registry = registry
        self._breakers = CircuitBreakers(
            failure_threshold=self.config.failure_threshold,
            timeout=self.config.timeout,
            clock=clock,
            on_state_change=self._circuit_changed,
        )
        self._clock, self._sleep, self._rng = clock, sleep, rng
        if webhook_allow_hosts is not None:
            self.config = OrchestratorConfig.of(
                {**self.config.model_dump(), "webhook_allow_hosts": webhook_allow_hosts}
            )
        self._allow_hosts = self.config.webhook_allow_hosts
        self._http_transport = http_transport
        self.step_cache = open_step_cache(self.checkpointer_url)
        """Outputs of `cacheable: true` steps (a table in the run's SQLite file, or memory)."""
        self._services: dict[int, RunServices] = {}
        self._stack: AsyncExitStack | None = None
        self._saver: BaseCheckpointSaver[Any] | None = None
        self._graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._index: RunStore | None = None
        self._lease_ttl = lease_ttl(self.config.get("lease_ttl"))
        self._executes_detached = False  # True in workers: detached runs execute here
        self._draining = False  # True while a worker drains: runs stop at the next boundary
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._no_actions = ActionRegistry()
        self._last_to = ""

    # -- resources ---------------------------------------------------------------------------

    async def _open(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        loop = asyncio.get_running_loop()
        if self._graph is not None and self._loop is loop:
            return self._graph
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        async with self._opening[1]:  # concurrent first calls open one connection, not many
            if self._graph is not None and self._loop is loop:
                return self._graph
            await self.aclose()
            stack = AsyncExitStack()
            self._saver = await open_checkpointer(self.checkpointer_url, stack)
            if self._index is None:
                self._index = await asyncio.to_thread(RunStore.open, self.checkpointer_url)
            await asyncio.to_thread(self.audit.ledger.setup)  # never create tables in a hook
            if isinstance(self._saver, GroupCommitSqliteSaver):
                self.audit.ledger.attach(self._saver)  # a step's entries share its commit
            self._stack, self._loop = stack, loop
            self._graph = build_graph(self._saver)
            freeze_long_lived()  # imports and the compiled graph: out of the collector's way
            return self._graph

    @property
    def index(self) -> RunStore:
        """The run store (runs, leases, lifecycle requests, claims) next to the checkpoints."""
        if self._index is None:
            raise RunStateError("the orchestrator is not open yet; await one of its methods")
        return self._index

    async def aclose(self) -> None:
        """Close the database connections (reopened on the next call)."""
        await asyncio.to_thread(self.audit.ledger.flush)
        if isinstance(self._saver, GroupCommitSqliteSaver):
            self.audit.ledger.detach(self._saver)
        self.step_cache.close()
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._saver = self._graph = self._loop = None
        if self._index is not None and backend_of(self.checkpointer_url) is not Backend.MEMORY:
            # a memory store lives as long as the orchestrator; a database's is reopened
            await asyncio.to_thread(self._index.close)
            self._index = None

    async def __aenter__(self) -> EnterpriseWorkflowOrchestrator:
        await self._open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The compiled StateGraph (`orch.graph.get_graph().draw_mermaid()` works offline)."""
        return self._graph if self._graph is not None else build_graph()

    def _services_for(self, workflow: AdvancedWorkflow) -> RunServices:
        actions = self.registry
        if actions is None:
            # without a registry or `actions:` module only webhooks can run; check_actions
            # names every action the workflow needs that nobody registered
            actions = (
                load_actions_module(workflow.actions) if workflow.actions else self._no_actions
            )
        key = id(actions)
        if key not in self._services:
            self._services[key] = RunServices(
                actions=actions,
                breakers=self._breakers,
                clock=self._clock,
                sleep=self._sleep,
                rng=self._rng,
                webhook_allow_hosts=self._allow_hosts,
                http_transport=self._http_transport,
                control=self._read_request,
                hooks=self.hooks,
                limits=self.limits,
                max_tokens=_max_tokens(self.config.get("max_tokens")),
                cache=self.step_cache,
            )
        return self._services[key]

    def _circuit_changed(self, *, name: str, old: Any, new: Any) -> None:
        self.hooks.on_circuit_change(name=name, old=str(old), new=str(new))

    def add_hooks(self, hooks: RunHooks) -> None:
        """Add observability hooks (metrics, audit) to every later run."""
        self.hooks.hooks.append(hooks)

    def _read_request(self, run_id: str) -> str | None:
        if self._draining:  # a worker shutting down: stop at this boundary, another continues
            return "pause"
        return self._index.pending_request(run_id) if self._index is not None else None

    @staticmethod
    def _config(
        run_id: str, workflow: AdvancedWorkflow, caller: RunnableConfig | None = None
    ) -> RunnableConfig:
        limit = max(1000, 10 * sum(1 for _ in workflow.iter_steps()))
        # ready action steps go out as one DAG task that starts each step when its own
        # dependencies end (nodes/_dag.py), instead of supersteps waiting for their slowest
        config: RunnableConfig = {
            "configurable": {"thread_id": run_id, SCHEDULE_DAG: True},
            "recursion_limit": limit,
        }
        return merge_caller_config(config, caller)

    # -- runs --------------------------------------------------------------------------------

    def _prepare(
        self,
        workflow: AdvancedWorkflow | Mapping[str, Any] | str | Path,
    ) -> AdvancedWorkflow:
        if isinstance(workflow, str | Path):
            workflow = load_workflow(workflow)
        elif not isinstance(workflow, AdvancedWorkflow):
            workflow = AdvancedWorkflow.from_dict(workflow)
        retries = self.config.max_retries
        if retries is not None and "max_attempts" not in workflow.retry_policy.model_fields_set:
            policy = workflow.retry_policy.model_copy(update={"max_attempts": retries + 1})
            workflow = workflow.model_copy(update={"retry_policy": policy})
        return workflow

    def check_actions(self, workflow: AdvancedWorkflow) -> None:
        """Raise `ActionNotFoundError` naming every action, agent and tool the registry lacks
        or that does not fit its step (e.g. a function as a react step's model), and
        `ModelProviderError` for a model string whose provider package is missing."""
        check_agents(workflow, self._services_for(workflow).actions)

    async def execute_workflow(
        self,
        workflow: AdvancedWorkflow | Mapping[str, Any] | str | Path,
        input_data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        execution_options: Mapping[str, Any] | None = None,
        config: RunnableConfig | None = None,
    ) -> RunResult:
        """Start a run and drive it until it finishes or waits (approval, pause).

        `execution_options` override the definition for this run: `timeout`,
        `max_parallel_steps`, `global_variables` (merged), and `run_id`.

        `config` is a LangChain `RunnableConfig` whose `callbacks`, `tags`, `metadata`,
        `run_name`, `recursion_limit` and `max_concurrency` apply to the run: every step runs
        as a child run named `step:<id>` under it (see README, "Traces"). A `max_concurrency`
        turns DAG tasks off (ready steps then go out `max_parallel_steps` per superstep).
        """
        workflow, payload, run_id = await self._start(
            workflow, input_data, run_id, execution_options
        )
        return await self._begin(run_id, workflow, payload, config)

    async def astream(
        self,
        workflow: AdvancedWorkflow | Mapping[str, Any] | str | Path,
        input_data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        stream_mode: StreamMode | Sequence[StreamMode] = "custom",
        config: RunnableConfig | None = None,
    ) -> AsyncIterator[Any]:
        """Start a run and yield what happens as it happens, until it finishes or waits.

        With the default `stream_mode="custom"` it yields step events (plain dicts:
        `{"event": "step_started" | "step_completed" | "step_failed" | "step_waiting" | ...,
        "step_id", "step_type", ...}`), then one `run_result` event carrying the `--json`
        object of the run. Any other LangGraph stream mode (`"updates"`, `"values"`,
        `"messages"` for model tokens, `"debug"`) or a list of modes is passed through; with
        a list, items are `(mode, chunk)` pairs as in LangGraph, ending with
        `("custom", run_result event)`.

        Example:
            ```python
            async for event in orch.astream(workflow, {"applicant_id": "A-1"}):
                print(event["event"], event.get("step_id"))
            ```
        """
        workflow, payload, run_id = await self._start(workflow, input_data, run_id)
        async for item in self._stream(run_id, workflow, payload, stream_mode, config):
            yield item

    async def resume_stream(
        self,
        run_id: str,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] = "custom",
        config: RunnableConfig | None = None,
    ) -> AsyncIterator[Any]:
        """`resume(run_id)`, yielding what happens as `astream` does."""
        sink = StreamSink(stream_mode)
        task = asyncio.create_task(self.resume(run_id, config=config, sink=sink))
        async for item in sink.drain(task):
            yield item

    async def _stream(
        self,
        run_id: str,
        workflow: AdvancedWorkflow,
        payload: Any,
        stream_mode: StreamMode | Sequence[StreamMode],
        config: RunnableConfig | None,
    ) -> AsyncIterator[Any]:
        sink = StreamSink(stream_mode)
        task = asyncio.create_task(self._begin(run_id, workflow, payload, config, sink))
        async for item in sink.drain(task):
            yield item

    async def _start(
        self,
        workflow: AdvancedWorkflow | Mapping[str, Any] | str | Path,
        input_data: Mapping[str, Any] | None,
        run_id: str | None,
        execution_options: Mapping[str, Any] | None = None,
    ) -> tuple[AdvancedWorkflow, dict[str, Any], str]:
        prepared, option_run_id = apply_options(self._prepare(workflow), execution_options)
        workflow, run_id = prepared, run_id or option_run_id
        if input_data is not None and not isinstance(input_data, Mapping):
            raise InvalidInputError(
                f"input_data must be a JSON object (a mapping), got {type(input_data).__name__}"
            )
        check_value(dict(input_data or {}), self.limits, what="input_data")
        check_value(
            workflow.global_variables,
            self.limits,
            what="global_variables",
            max_bytes=self.limits.max_definition_bytes,
        )
        self.check_actions(workflow)
        await self._open()
        run_id = run_id or uuid.uuid4().hex
        payload = {"workflow": workflow.to_data(), "context": dict(input_data or {})}
        return workflow, payload, run_id

    async def _begin(
        self,
        run_id: str,
        workflow: AdvancedWorkflow,
        payload: dict[str, Any],
        config: RunnableConfig | None,
        sink: StreamSink | None = None,
    ) -> RunResult:
        """Take the new run's lease, refuse an existing run id, and drive the run."""
        graph = await self._open()
        async with self._owning(run_id, "run"):
            if (await graph.aget_state(self._config(run_id, workflow))).values:
                raise RunStateError(
                    f"run '{run_id}' already exists; use resume('{run_id}') to "
                    "continue it or choose another run id"
                )
            # listed at once (`orchestrator runs`), before its first checkpoint lands
            now = self._clock()
            started = datetime.fromtimestamp(now, UTC).isoformat()
            row = {"workflow_id": workflow.workflow_id, "status": "running", "started_at": started}
            await asyncio.to_thread(self.index.record, run_id, row, now)
            return await self._drive(run_id, workflow, payload, config, sink)

    def _owning(self, run_id: str, what: str) -> Any:
        """The run's lease for the body (`RunBusyError` when another owner has it)."""
        return owning(self.index, run_id, ttl=self._lease_ttl, what=what)

    async def plan_workflow(
        self,
        task: str,
        *,
        planner: str = "planner",
        input_data: Mapping[str, Any] | None = None,
        approvers: Sequence[str] = (),
        actions_module: str | None = None,
    ) -> Plan:
        """Ask the `planner` model for a workflow doing `task` (validated, one repair round).

        With `approvers` the plan starts with a `human_approval` step (`review_plan`) that every
        other step waits for. `actions_module` is written into the plan (for the CLI)."""
        actions = self.registry or (
            load_actions_module(actions_module) if actions_module else self._no_actions
        )
        return await plan_workflow(
            task,
            actions,
            planner=planner,
            input_data=input_data,
            approvers=approvers,
            actions_module=actions_module,
            sleep=self._sleep,
        )

    async def execute_task(
        self,
        task: str,
        input_data: Mapping[str, Any] | None = None,
        *,
        planner: str = "planner",
        approvers: Sequence[str] = (),
        run_id: str | None = None,
        actions_module: str | None = None,
    ) -> RunResult:
        """Plan a workflow for `task` with the `planner` model, audit the plan, and run it."""
        plan = await self.plan_workflow(
            task,
            planner=planner,
            input_data=input_data,
            approvers=approvers,
            actions_module=actions_module,
        )
        run_id = run_id or uuid.uuid4().hex
        self.hooks.on_plan(
            workflow_id=plan.workflow.workflow_id,
            run_id=run_id,
            step_id=None,
            plan=plan_json(plan),
            repaired=plan.repaired,
            task=task,
        )
        return await self.execute_workflow(plan.workflow, input_data, run_id=run_id)

    async def _drive(
        self,
        run_id: str,
        workflow: AdvancedWorkflow,
        payload: Any,
        config: RunnableConfig | None = None,
        sink: StreamSink | None = None,
    ) -> RunResult:
        """Run the graph for `run_id` from `payload` (input, None, or a resume Command);
        with a `sink`, stream chunks into it as they come.

        The caller holds the run's lease (`_owning`)."""
        graph = await self._open()
        run_config = self._config(run_id, workflow, config)
        services = self._services_for(workflow)
        async with self._slots.slot():  # max_concurrent_workflows: wait for a free slot
            # "sync": a superstep's checkpoint is on disk before the next superstep starts,
            # so a crash never loses a step that finished (LangGraph's default is "async")
            try:
                if sink is None:
                    await graph.ainvoke(payload, run_config, context=services, durability="sync")
                else:
                    async for chunk in graph.astream(
                        payload,
                        run_config,
                        context=services,
                        durability="sync",
                        stream_mode=sink.modes,
                    ):
                        sink.put(chunk)
            finally:
                forget_plans(run_id)  # the next drive may be in another process, or hours away
                if isinstance(self._saver, GroupCommitSqliteSaver):
                    # writes no checkpoint followed (a failed or interrupted superstep)
                    await self._saver.drain()
        run = await self.status(run_id)
        if run.status is WorkflowStatus.PAUSED and (await lifecycle.rollback_due(self, run_id)):
            run = await lifecycle.restore(self, run_id, workflow)
            self.hooks.on_rollback(workflow_id=run.workflow_id, run_id=run_id, to=self._last_to)
        for request in run.pending_approvals:
            self.hooks.on_approval(
                workflow_id=run.workflow_id,
                run_id=run_id,
                step_id=request["step_id"],
                event="requested",
                actor="system",
                request=request,
            )
        return run

    async def _snapshot(self, run_id: str) -> tuple[Any, RunResult, AdvancedWorkflow]:
        url = self.checkpointer_url
        if url.startswith("sqlite:///") and not sqlite_path(url).exists():
            raise RunNotFoundError(
                f"no run '{run_id}': there is no run database at {sqlite_path(url)}; pass the "
                "database the run used with --db / checkpointer= (or set ORCHESTRATOR_DB)"
            )
        graph = await self._open()
        snapshot = await graph.aget_state({"configurable": {"thread_id": run_id}})
        values = snapshot.values or {}
        if not values or not (values.get("workflow") or {}).get("steps"):
            # nothing yet, or only the first checkpoint of a run another process is starting
            # (its definition not written yet): not a run to read until it has one
            raise RunNotFoundError(
                f"no run '{run_id}' in {safe_url(self.checkpointer_url)}; check the id, or pass "
                "the database it ran on with --db / checkpointer="
            )
        workflow = workflow_from_state(values["workflow"], values.get("workflow_key") or None)
        shown = snapshot
        if snapshot.next and isinstance(graph.checkpointer, BaseCheckpointSaver):  # mid-superstep
            saved = await graph.checkpointer.aget_tuple(snapshot.config)
            if saved is not None and saved.pending_writes:
                shown = snapshot._replace(values=with_steps_in_flight(values, saved.pending_writes))
        return snapshot, RunResult.from_snapshot(run_id, shown), workflow

    async def submit(
        self,
        workflow: AdvancedWorkflow | Mapping[str, Any] | str | Path,
        input_data: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> RunResult:
        """Queue a run for workers (`orchestrator worker`, Postgres only); status `pending`.

        Its approvals, resume, rollback and cancel then queue continuations too; `wait`
        blocks until it settles."""
        workflow = self._prepare(workflow)
        if input_data is not None and not isinstance(input_data, Mapping):
            raise InvalidInputError(
                f"input_data must be a JSON object (a mapping), got {type(input_data).__name__}"
            )
        self.check_actions(workflow)
        return await detached.submit(self, workflow, dict(input_data or {}), run_id)

    async def wait(
        self, run_id: str, *, timeout: float | None = None, interval: float = 0.2
    ) -> RunResult:
        """Block until the run is neither pending nor running (or `timeout` passes)."""
        return await detached.wait(self, run_id, timeout=timeout, interval=interval)

    async def _queued(self, run_id: str) -> bool:
        """True when the run's continuations go to workers rather than run here."""
        if self._executes_detached or backend_of(self.checkpointer_url) is not Backend.POSTGRES:
            return False
        await self._open()
        return await asyncio.to_thread(self.index.is_detached, run_id)

    async def status(self, run_id: str) -> RunResult:
        """Where a run stands, from its latest checkpoint (and, for a detached run, its
        queue: `pending` while a job waits for a worker)."""
        watch_queue = await self._queued(run_id)
        try:
            snapshot, run, _ = await self._snapshot(run_id)
        except RunNotFoundError:
            queued = await detached.overlay(self, run_id, None) if watch_queue else None
            if queued is None:
                raise
            return queued
        if watch_queue:
            run = await detached.overlay(self, run_id, run) or run
        request = await asyncio.to_thread(self.index.pending_request, run_id)
        if request == "pause" and not run.status.is_terminal:
            owned = await asyncio.to_thread(self.index.leases.live, run_id)
            if owned is None:
                run = replace(run, status=WorkflowStatus.PAUSED)
        if not run.status.is_terminal:
            run = replace(run, step_results=self._live.overlay(run_id, run.step_results))
        await asyncio.to_thread(
            self.index.record,
            run_id,
            {**unpack(snapshot.values), "status": run.status.value},
            self._clock(),
        )
        return run

    async def resume(
        self, run_id: str, *, config: RunnableConfig | None = None, sink: StreamSink | None = None
    ) -> RunResult:
        """Continue a paused or interrupted (crashed) run; finished steps do not run again.

        `config` passes callbacks, tags and metadata as in `execute_workflow`."""
        _, current, _ = await self._snapshot(run_id)  # RunNotFoundError before any lease
        if await self._queued(run_id):
            if current.status.is_terminal:
                raise RunStateError(f"run '{run_id}' is {current.status.value}; it cannot resume")
            return await detached.enqueue(self, run_id, "resume")
        async with self._owning(run_id, "resume"):
            snapshot, run, workflow = await self._snapshot(run_id)
            if run.status.is_terminal:
                raise RunStateError(
                    f"run '{run_id}' is {run.status.value}; a finished run cannot be resumed "
                    "(start a new run, or roll it back to a rollback point first)"
                )
            await asyncio.to_thread(self.index.finish_requests, run_id, ("pause",))
            if run.status is WorkflowStatus.WAITING_APPROVAL:
                return await self.status(run_id)  # un-paused: it waits for its approval again
            graph = await self._open()
            if snapshot.values.get("status") == WorkflowStatus.PAUSED.value:
                await graph.aupdate_state(
                    self._config(run_id, workflow),
                    {"status": WorkflowStatus.RUNNING.value, "control": None},
                    as_node="error_recovery",
                )
            return await self._drive(run_id, workflow, None, config, sink)

    async def pause(self, run_id: str) -> RunResult:
        """Stop a run at its next step boundary (status `paused`); `resume` continues it."""
        return await lifecycle.queue_request(self, run_id, "pause")

    async def cancel(self, run_id: str, *, compensate: bool = False) -> RunResult:
        """End a run for good (status `cancelled`); `compensate` first undoes completed steps."""
        kind = "cancel_compensate" if compensate else "cancel"
        return await lifecycle.queue_request(self, run_id, kind)

    async def rollback(self, run_id: str, to: str) -> RunResult:
        """Compensate the steps completed after rollback point `to` (newest first), restore the
        run to the checkpoint taken just before that step, and leave it paused there."""
        return await lifecycle.rollback(self, run_id, to)

    async def sweep(self) -> list[RunResult]:
        """Decide every approval waiting past its deadline by its `on_timeout` policy.

        Safe to run repeatedly and from several processes at once: a run is swept under its
        lease (a run someone else advances right now is left for later), so exactly one
        sweeper decides each expired request.
        """
        return await decisions.sweep(self)

    async def approve(
        self,
        run_id: str,
        approver: str,
        comment: str | None = None,
        *,
        request_id: str | None = None,
    ) -> RunResult:
        """Approve the pending approval `approver` may decide, and continue the run."""
        return await decisions.decide(self, run_id, approver, "approve", comment, request_id)

    async def reject(
        self,
        run_id: str,
        approver: str,
        reason: str | None = None,
        *,
        request_id: str | None = None,
    ) -> RunResult:
        """Reject the pending approval `approver` may decide; the step fails with `reason`."""
        return await decisions.decide(self, run_id, approver, "reject", reason, request_id)

    async def audit_trail(self, run_id: str) -> list[dict[str, Any]]:
        """The run's audit entries, oldest first; a rollback adds entries, never removes any."""
        await self._snapshot(run_id)  # RunNotFoundError for an unknown run
        return self.audit.ledger.entries(run_id)

    async def verify_audit(self, run_id: str) -> VerifyResult:
        """Check the run's hash chain, and that it reaches the head its state recorded."""
        snapshot, run, _ = await self._snapshot(run_id)
        head = unpack(snapshot.values).get("audit_head")
        finished = run.status.is_terminal
        return self.audit.ledger.verify(run_id, expected_head=head, finished=finished)


def _max_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(
            f"config max_tokens must be a positive integer (tokens per run), got {value!r}"
        )
    return value
