"""`orchestrator worker`: a process that executes queued runs until SIGTERM, then drains.

Each job advances one run under the run's lease and a procrastinate lock on the run id. On
SIGTERM the worker takes no new jobs; runs in flight stop at their next step boundary and
are queued again for another worker; it exits within its grace period (a step still running
then is cancelled and re-runs elsewhere, as after a crash). A periodic job re-queues runs
whose owner died (a killed worker's or CLI process's) once their lease lapsed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from contextlib import AsyncExitStack, suppress
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from orchestrator import _decisions as decisions
from orchestrator import _lifecycle as lifecycle
from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._metrics import serve_metrics
from orchestrator.workers._queue import QUEUE, RECOVER, TASK, RunQueue, ensure_schema, make_app
from state import (
    LeaseLostError,
    OrchestratorError,
    RunBusyError,
    RunNotFoundError,
    RunStateError,
    WorkflowStatus,
)

_log = structlog.get_logger("orchestrator.worker")

RECOVER_EVERY = 5
"""Seconds between looks for runs whose owner died."""


class Worker:
    """One worker process: an orchestrator that executes detached runs, and its queue."""

    def __init__(self, url: str, *, concurrency: int = 4, grace: float = 30.0) -> None:
        self.url = url
        self.concurrency = concurrency
        self.grace = grace
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        """How this worker appears in logs, metrics and `orchestrator runs`."""
        self.orch = EnterpriseWorkflowOrchestrator(checkpointer=url)
        self.orch._executes_detached = True
        self.app = make_app(url)
        self.jobs = Counter(
            "orchestrator_worker_jobs_total",
            "Run jobs this worker finished, by operation and outcome.",
            ["op", "outcome"],
            registry=self.orch.metrics.registry,
        )
        self.takeovers = Counter(
            "orchestrator_lease_takeovers_total",
            "Runs this worker took over from an owner that died or went silent.",
            registry=self.orch.metrics.registry,
        )
        self.depth = Gauge(
            "orchestrator_queue_depth",
            "Run jobs waiting in the queue (all workers).",
            registry=self.orch.metrics.registry,
        )
        self.states = Gauge(
            "orchestrator_queue_jobs",
            "Run jobs in the queue by state (all workers).",
            ["state"],
            registry=self.orch.metrics.registry,
        )
        self._register()

    def _register(self) -> None:
        @self.app.task(name=TASK, queue=QUEUE, pass_context=False, retry=_retry())  # type: ignore[untyped-decorator]
        async def advance(run_id: str, op: str, args: dict[str, Any]) -> None:
            await self.advance(run_id, op, args)

        @self.app.periodic(cron=f"* * * * * */{RECOVER_EVERY}", periodic_id="recover")  # type: ignore[untyped-decorator]
        @self.app.task(name=RECOVER, queue=QUEUE, pass_context=False)  # type: ignore[untyped-decorator]
        async def recover(timestamp: int) -> None:  # noqa: ARG001 -- procrastinate passes the tick
            await self.recover()

    async def advance(self, run_id: str, op: str, args: dict[str, Any]) -> None:
        """Carry out one job on its run."""
        log = _log.bind(run_id=run_id, worker=self.name, op=op)
        structlog.contextvars.bind_contextvars(worker=self.name)
        try:
            run = await self._carry(run_id, op, args)
        except RunBusyError:
            self.jobs.labels(op, "busy").inc()
            raise  # procrastinate retries it shortly: another process is at the run
        except (LeaseLostError, RunStateError, RunNotFoundError, OrchestratorError) as exc:
            # a late or refused continuation: the run moved on; nothing to retry
            self.jobs.labels(op, "refused").inc()
            log.warning("run_job_refused", error=str(exc))
            return
        self.jobs.labels(op, "done").inc()
        if run is not None:
            await self._follow_up(run_id, run.status, run.pending_approvals)

    async def _carry(self, run_id: str, op: str, args: dict[str, Any]) -> Any:
        orch = self.orch
        if op == "start":
            try:
                await orch.status(run_id)
            except RunNotFoundError:
                return await orch.execute_workflow(args["workflow"], args["input"], run_id=run_id)
            return await orch.resume(run_id)  # a retried start after a crash mid-run
        if op == "resume":
            run = await orch.status(run_id)
            return run if run.status.is_terminal else await orch.resume(run_id)
        if op in ("approve", "reject"):
            return await decisions.decide(
                orch, run_id, args["approver"], op, args.get("comment"), args.get("request_id")
            )
        if op == "rollback":
            return await orch.rollback(run_id, args["to"])
        if op == "cancel":
            return await lifecycle.carry_out(orch, run_id)
        if op == "deadline":
            return await decisions.sweep_one(orch, run_id)
        raise RunStateError(f"unknown run job {op!r}")

    async def _follow_up(
        self, run_id: str, status: WorkflowStatus, pending: list[dict[str, Any]]
    ) -> None:
        async with RunQueue(self.url) as queue:
            if status is WorkflowStatus.PAUSED and self.orch._draining:
                user_pause = await asyncio.to_thread(self.orch.index.pending_request, run_id)
                if user_pause is None:  # stopped by our drain, not by a user: hand it on
                    await queue.defer(run_id, "resume")
            for request in pending:
                deadline = request.get("deadline")
                if deadline:
                    at = _epoch(deadline)
                    key = f"deadline:{run_id}:{request['request_id']}:{at}"
                    await queue.defer_once(run_id, "deadline", key, lock=False, at=at)

    async def recover(self) -> None:
        """Re-queue runs whose owner died: stalled jobs, and unfinished runs without a live
        lease or a queued job."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            task_name=TASK, seconds_since_heartbeat=self.orch._lease_ttl
        )
        for job in stalled:
            await manager.retry_job(job)
            _log.warning("stalled_job_requeued", run_id=job.lock, worker=self.name)
        await self._requeue_orphans()
        await self._measure_queue()

    async def _requeue_orphans(self) -> None:
        from orchestrator.workers._queue import job_states

        store = self.orch.index
        for row in await asyncio.to_thread(store.runs):
            status = row["status"]
            if status not in ("running", "initializing", "rollback"):
                continue
            run_id = row["run_id"]
            if row["holder"] or await asyncio.to_thread(job_states, self.url, run_id):
                continue
            await asyncio.to_thread(store.mark_detached, run_id, row["workflow_id"] or "", 0.0)
            async with RunQueue(self.url) as queue:
                if await queue.defer_once(run_id, "resume", f"recover:{run_id}") is not None:
                    self.takeovers.inc()
                    _log.warning("orphaned_run_requeued", run_id=run_id, worker=self.name)

    async def _measure_queue(self) -> None:
        from orchestrator.storage import open_db

        def read() -> list[tuple[Any, ...]]:
            db = open_db(self.url)
            try:
                return db.query(
                    "SELECT status::text, count(*) FROM procrastinate_jobs WHERE task_name = ?"
                    " GROUP BY status",
                    (TASK,),
                )
            finally:
                db.close()

        counts = dict(await asyncio.to_thread(read))
        for state in ("todo", "doing", "succeeded", "failed", "cancelled", "aborted"):
            self.states.labels(state).set(counts.get(state, 0))
        self.depth.set(counts.get("todo", 0))

    async def run(self, metrics_port: int | None = None) -> None:
        """Work until SIGTERM/SIGINT, then drain and return."""
        await asyncio.to_thread(ensure_schema, self.url)
        server = serve_metrics(self.orch.metrics.registry, metrics_port) if metrics_port else None
        loop = asyncio.get_running_loop()
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.app.open_async())
            await self.orch._open()
            task = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=self.concurrency,
                    name=self.name,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=self.grace,
                    update_heartbeat_interval=2.0,
                    stalled_worker_timeout=self.orch._lease_ttl,
                    fetch_job_polling_interval=0.5,
                )
            )

            def stop() -> None:
                _log.info("worker_draining", worker=self.name)
                self.orch._draining = True  # runs in flight stop at their next step boundary
                task.cancel()  # procrastinate stops fetching and waits for running jobs

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)
            _log.info("worker_started", worker=self.name, concurrency=self.concurrency)
            print(f"worker {self.name} started (concurrency {self.concurrency})", flush=True)
            with suppress(asyncio.CancelledError):
                await task
            await self.orch.aclose()
        if server is not None:
            server.shutdown()
            server.server_close()
        print(f"worker {self.name} stopped", flush=True)


def _epoch(value: Any) -> float:
    """An approval deadline (epoch seconds or ISO-8601 text) as epoch seconds."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def _retry() -> Any:
    import procrastinate

    return procrastinate.RetryStrategy(
        max_attempts=1000, wait=1, retry_exceptions={RunBusyError, OSError}
    )
