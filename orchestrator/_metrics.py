"""Prometheus metrics: live from a run's hooks, or rebuilt from the run database at scrape time.

`MetricsCollector` is a `RunHooks` that counts what the runs of this process do;
`DatabaseCollector` answers for every run recorded in a database (what `orchestrator metrics`
serves). Both live on a `CollectorRegistry` the caller owns, never only the global one. Labels
name workflows, statuses, step types, outcomes, actions and strategies, never run ids, so the
number of series stays bounded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from nodes import RunHooks
from orchestrator._watch import refreshed_runs
from state import InvalidInputError, WorkflowStatus

CIRCUIT_STATE_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
"""`orchestrator_circuit_breaker_state` values by breaker state."""

RUN_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
"""Run durations span seconds (automated) to days (waiting for people)."""

STEP_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Step durations: from in-process functions to slow remote calls."""

COMPLEXITY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
"""Decision complexity: steps plus edges, from one-step workflows to large graphs."""

_FINISHED = frozenset(s.value for s in WorkflowStatus if s.is_terminal)

SHUTDOWN_POLL_SECONDS = 0.05
"""How often the metrics server checks whether it was asked to stop."""

T = TypeVar("T")


class MetricsCollector(RunHooks):
    """Run hooks that keep Prometheus metrics of the runs of this process.

    Example:
        ```python
        metrics = MetricsCollector()            # a fresh registry; or registry=your_registry
        orch = EnterpriseWorkflowOrchestrator(registry=actions, hooks=[metrics])
        await orch.execute_workflow(workflow, {})
        print(generate_latest(metrics.registry).decode())
        ```

    Node hooks are at-least-once: a step that LangGraph replays after a crash is counted again
    by the process that replays it. The gauges (active runs, pending approvals) track run ids
    internally, so a replayed or foreign event never drives them below zero.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs_started = Counter(
            "orchestrator_runs_started", "Runs started.", ["workflow"], registry=r
        )
        self.runs_finished = Counter(
            "orchestrator_runs_finished",
            "Runs that reached a terminal status.",
            ["workflow", "status"],
            registry=r,
        )
        self.run_duration = Histogram(
            "orchestrator_run_duration_seconds",
            "Wall time from start to terminal status.",
            ["workflow"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.step_duration = Histogram(
            "orchestrator_step_duration_seconds",
            "Wall time of steps that ran (completed or failed), retries included.",
            ["workflow", "step_type"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.step_outcomes = Counter(
            "orchestrator_step_outcomes",
            "Steps finished, by outcome (completed, failed, skipped).",
            ["workflow", "step_type", "outcome"],
            registry=r,
        )
        self.step_retries = Counter(
            "orchestrator_step_retries",
            "Failed attempts that are retried.",
            ["workflow"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "orchestrator_circuit_breaker_state",
            "Circuit breaker per action: 0 closed, 1 half open, 2 open.",
            ["action"],
            registry=r,
        )
        self.approvals_pending = Gauge(
            "orchestrator_approvals_pending",
            "Approval requests waiting for a decision.",
            ["workflow"],
            registry=r,
        )
        self.active_runs = Gauge(
            "orchestrator_active_runs",
            "Runs started and not finished (waiting and paused ones included).",
            ["workflow"],
            registry=r,
        )
        self.decisions = Counter(
            "orchestrator_decisions",
            "Scheduling decisions, by strategy (a step type, parallel or mixed).",
            ["workflow", "strategy"],
            registry=r,
        )
        self.decision_complexity = Histogram(
            "orchestrator_decision_complexity",
            "Complexity score (steps plus dependency edges) of the workflow at each decision.",
            ["workflow"],
            buckets=COMPLEXITY_BUCKETS,
            registry=r,
        )
        self.sla_breaches = Counter(
            "orchestrator_sla_breaches", "SLA targets missed.", ["workflow"], registry=r
        )
        self._lock = threading.Lock()
        self._active: dict[str, str] = {}
        self._pending: dict[tuple[str, str], str] = {}
        self._custom: dict[str, tuple[str, Gauge | Counter | Histogram]] = {}

    def on_run_started(self, *, workflow_id: str, run_id: str, **_: Any) -> None:
        """Count the run and mark it active."""
        self.runs_started.labels(workflow=workflow_id).inc()
        with self._lock:
            if run_id not in self._active:
                self._active[run_id] = workflow_id
                self.active_runs.labels(workflow=workflow_id).inc()

    def on_run_finished(
        self, *, workflow_id: str, run_id: str, status: str, duration: float, **_: Any
    ) -> None:
        """Count the outcome, observe the duration, and forget the run's pending approvals."""
        self.runs_finished.labels(workflow=workflow_id, status=status).inc()
        self.run_duration.labels(workflow=workflow_id).observe(max(0.0, duration))
        with self._lock:
            if self._active.pop(run_id, None) is not None:
                self.active_runs.labels(workflow=workflow_id).dec()
            for key in [k for k in self._pending if k[0] == run_id]:
                self.approvals_pending.labels(workflow=self._pending.pop(key)).dec()

    def on_decision(
        self, *, workflow_id: str, strategy: str, complexity: float = 0.0, **_: Any
    ) -> None:
        """Count a scheduling decision by strategy."""
        self.record_orchestration_decision(workflow_id, strategy, complexity)

    def record_orchestration_decision(
        self, workflow_id: str, strategy: str, complexity: float
    ) -> None:
        """Count a decision (`strategy`: a step type, `parallel` or `mixed`) and observe the
        workflow's complexity score.

            MetricsCollector().record_orchestration_decision("loan", "parallel", 12.0)
        """
        self.decisions.labels(workflow=workflow_id, strategy=strategy).inc()
        self.decision_complexity.labels(workflow=workflow_id).observe(max(0.0, complexity))

    def on_step(
        self,
        *,
        workflow_id: str,
        step_type: str,
        status: str,
        duration: float,
        metrics_enabled: bool = True,
        **_: Any,
    ) -> None:
        """Count the outcome; observe the duration of steps that ran (nothing for a step with
        `metrics_enabled: false`)."""
        if not metrics_enabled:
            return
        self.step_outcomes.labels(workflow=workflow_id, step_type=step_type, outcome=status).inc()
        if status != "skipped":
            self.step_duration.labels(workflow=workflow_id, step_type=step_type).observe(
                max(0.0, duration)
            )

    def on_custom_metric(
        self, *, workflow_id: str, step_id: str, name: str, kind: str, value: float, **_: Any
    ) -> None:
        """Set, add to or observe a step's custom series `name{workflow, step}`."""
        metric = self._custom_metric(name, kind)
        series = metric.labels(workflow=workflow_id, step=step_id)
        if isinstance(series, Gauge):
            series.set(value)
        elif isinstance(series, Counter):
            series.inc(max(0.0, value))
        else:
            series.observe(value)

    def _custom_metric(self, name: str, kind: str) -> Gauge | Counter | Histogram:
        with self._lock:
            known = self._custom.get(name)
            if known is not None:
                if known[0] != kind:
                    raise InvalidInputError(
                        f"custom metric '{name}' is a {known[0]} already; a step declares it "
                        f"as a {kind}: use one kind per name, or another name"
                    )
                return known[1]
            doc, labels = f"Custom metric {name} set by steps.", ["workflow", "step"]
            metric: Gauge | Counter | Histogram
            if kind == "counter":
                metric = Counter(name, doc, labels, registry=self.registry)
            elif kind == "histogram":
                metric = Histogram(name, doc, labels, registry=self.registry)
            else:
                metric = Gauge(name, doc, labels, registry=self.registry)
            self._custom[name] = (kind, metric)
            return metric

    def on_step_retry(self, *, workflow_id: str, **_: Any) -> None:
        """Count a retry."""
        self.step_retries.labels(workflow=workflow_id).inc()

    def on_circuit_change(self, *, name: str, new: str, **_: Any) -> None:
        """Set the breaker's state."""
        self.circuit_state.labels(action=name).set(CIRCUIT_STATE_VALUES.get(str(new), 0.0))

    def on_approval(
        self, *, workflow_id: str, run_id: str, step_id: str, event: str, **_: Any
    ) -> None:
        """A request raises the pending gauge; a decision or timeout lowers it."""
        key = (run_id, step_id)
        with self._lock:
            if event == "requested":
                if key not in self._pending:
                    self._pending[key] = workflow_id
                    self.approvals_pending.labels(workflow=workflow_id).inc()
            elif key in self._pending:
                self.approvals_pending.labels(workflow=self._pending.pop(key)).dec()

    def on_sla_breach(self, *, workflow_id: str, **_: Any) -> None:
        """Count an SLA breach (of the run or of a step)."""
        self.sla_breaches.labels(workflow=workflow_id).inc()


class DatabaseCollector(Collector):
    """Gauges of every run recorded in an orchestrator's database, computed at scrape time.

    Unfinished runs are re-read from their latest checkpoint first (which also refreshes the run
    index), so a scrape sees runs that other processes are executing. Exposes
    `orchestrator_runs{workflow,status}`, `orchestrator_active_runs{workflow}` and
    `orchestrator_approvals_pending{workflow}`. The collector opens its own connections for
    each scrape and closes them after.

    Example:
        ```python
        registry = CollectorRegistry()
        registry.register(DatabaseCollector("sqlite:///.orchestrator/runs.sqlite"))
        ```
    """

    def __init__(self, db: str) -> None:
        # imported here: the facade builds a MetricsCollector for every orchestrator
        from orchestrator._facade import EnterpriseWorkflowOrchestrator

        self.db = db
        self.orch = EnterpriseWorkflowOrchestrator(checkpointer=db)
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        """The families, without reading the database (lets the registry catch clashes)."""
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        """Read the database and yield the gauges."""
        with self._lock:
            rows = run_blocking(lambda: refreshed_runs(self.orch))
        runs, active, pending = _families()
        by_status: Tally[tuple[str, str]] = Tally()
        active_by: Tally[str] = Tally()
        pending_by: Tally[str] = Tally()
        for row in rows:
            workflow, status = row["workflow_id"] or "", row["status"] or "initializing"
            by_status[workflow, status] += 1
            active_by[workflow] += status not in _FINISHED
            pending_by[workflow] += row.get("pending_approvals", 0)
        for (workflow, status), count in sorted(by_status.items()):
            runs.add_metric([workflow, status], count)
        for workflow in sorted(active_by):
            active.add_metric([workflow], active_by[workflow])
            pending.add_metric([workflow], pending_by[workflow])
        yield from (runs, active, pending)


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily(
            "orchestrator_runs", "Runs in the database by status.", labels=["workflow", "status"]
        ),
        GaugeMetricFamily(
            "orchestrator_active_runs",
            "Runs started and not finished (waiting and paused ones included).",
            labels=["workflow"],
        ),
        GaugeMetricFamily(
            "orchestrator_approvals_pending",
            "Approval requests waiting for a decision.",
            labels=["workflow"],
        ),
    )


def run_blocking(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, also when this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(make))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(_await(make))
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the calling thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="orchestrator-metrics-read")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


async def _await(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a line on stderr each."""


def serve_metrics(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> WSGIServer:
    """Serve `registry` on `http://addr:port/metrics` from a daemon thread.

    `port=0` picks a free port (read it from `server.server_port`); stop with
    `server.shutdown(); server.server_close()`.
    """

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET

    server = make_server(addr, port, make_wsgi_app(registry), Server, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
        name="orchestrator-metrics",
        daemon=True,
    )
    thread.start()
    return server
