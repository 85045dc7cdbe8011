"""Prometheus metrics through the public contract, scraped from a real HTTP endpoint.

Runs go through `EnterpriseWorkflowOrchestrator(hooks=[collector])` on a real SQLite file; the
collector's registry (or a `DatabaseCollector`'s) is served on a free local port and `/metrics`
is parsed with `prometheus_client.parser`.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CliWorkspace, FakeClock, RecordingSleep
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import ActionRegistry
from orchestrator._cli_observe import metrics_endpoint
from orchestrator._metrics import DatabaseCollector, MetricsCollector, serve_metrics
from state import AdvancedWorkflow, WorkflowStatus

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _get(port: int) -> Samples:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def scrape(registry: CollectorRegistry) -> Samples:
    """Serve `registry` on a free port, GET /metrics once, parse every sample."""
    server = serve_metrics(registry, 0)
    try:
        return await _get(server.server_port)
    finally:
        server.shutdown()
        server.server_close()


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample `name{labels}`, or None when it is absent."""
    return samples.get((name, frozenset(labels.items())))


def _registry(failures: int = 0) -> ActionRegistry:
    registry = ActionRegistry()
    calls = {"flaky": 0}

    @registry.action("ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @registry.action("boom")
    async def boom() -> None:
        raise RuntimeError("payment gateway refused")

    @registry.action("flaky")
    async def flaky() -> dict[str, int]:
        calls["flaky"] += 1
        if calls["flaky"] <= failures:
            raise ConnectionError("connection reset")
        return {"calls": calls["flaky"]}

    return registry


def _workflow(workflow_id: str, *steps: dict[str, Any], **extra: Any) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {"name": workflow_id, "workflow_id": workflow_id, "steps": list(steps), **extra}
    )


def _seq() -> AdvancedWorkflow:
    return _workflow(
        "seq",
        {"step_id": "a", "action": "ok"},
        {"step_id": "b", "action": "ok", "dependencies": ["a"]},
    )


def _failing() -> AdvancedWorkflow:
    return _workflow(
        "failing",
        {"step_id": "prepare", "action": "ok"},
        {"step_id": "charge", "action": "boom", "dependencies": ["prepare"]},
        retry_policy={"max_attempts": 1},
    )


def _approval() -> AdvancedWorkflow:
    return _workflow(
        "approval",
        {"step_id": "prepare", "action": "ok"},
        {
            "step_id": "sign_off",
            "step_type": "human_approval",
            "dependencies": ["prepare"],
            "approval": {"approvers": ["dana"]},
        },
        {"step_id": "ship", "action": "ok", "dependencies": ["sign_off"]},
    )


def _routed() -> AdvancedWorkflow:
    return _workflow(
        "routed",
        {"step_id": "a", "action": "ok"},
        {
            "step_id": "route",
            "step_type": "conditional",
            "dependencies": ["a"],
            "conditions": [{"if": "input.go", "then": ["b"]}, {"else": ["c"]}],
        },
        {"step_id": "b", "action": "ok"},
        {"step_id": "c", "action": "ok"},
    )


def _flaky() -> AdvancedWorkflow:
    return _workflow(
        "flaky",
        {"step_id": "s", "action": "flaky"},
        retry_policy={"max_attempts": 3, "initial_delay": 0.1, "max_delay": 5, "jitter": 0},
    )


async def test_runs_started_and_finished_are_counted_by_workflow_and_status(
    make_orch: Any,
) -> None:
    """One completed and two failed runs show as started and finished with their status."""
    metrics = MetricsCollector()
    orch = make_orch(_registry(), hooks=[metrics])
    await orch.execute_workflow(_seq(), {})
    await orch.execute_workflow(_failing(), {})
    await orch.execute_workflow(_failing(), {})
    samples = await scrape(metrics.registry)
    assert value(samples, "orchestrator_runs_started_total", workflow="seq") == 1
    assert value(samples, "orchestrator_runs_started_total", workflow="failing") == 2
    assert (
        value(samples, "orchestrator_runs_finished_total", workflow="seq", status="completed") == 1
    )
    assert (
        value(samples, "orchestrator_runs_finished_total", workflow="failing", status="failed") == 2
    )
    assert value(samples, "orchestrator_active_runs", workflow="seq") == 0


async def test_step_outcomes_are_counted_by_step_type(make_orch: Any) -> None:
    """Completed steps are counted per step type; a failed step has outcome `failed`."""
    metrics = MetricsCollector()
    orch = make_orch(_registry(), hooks=[metrics])
    await orch.execute_workflow(_routed(), {"go": True})
    await orch.execute_workflow(_failing(), {})
    samples = await scrape(metrics.registry)
    outcomes = "orchestrator_step_outcomes_total"
    assert (
        value(samples, outcomes, workflow="routed", step_type="sequential", outcome="completed")
        == 2
    )
    assert (
        value(samples, outcomes, workflow="routed", step_type="conditional", outcome="completed")
        == 1
    )
    assert (
        value(samples, outcomes, workflow="failing", step_type="sequential", outcome="completed")
        == 1
    )
    assert (
        value(samples, outcomes, workflow="failing", step_type="sequential", outcome="failed") == 1
    )


async def test_retries_and_step_duration_follow_the_injected_sleep(make_orch: Any) -> None:
    """Two retries are counted, and the step's duration is the backoff the fake sleep took."""
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    metrics = MetricsCollector()
    orch = make_orch(_registry(failures=2), hooks=[metrics], clock=clock, sleep=sleep)
    run = await orch.execute_workflow(_flaky(), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert sleep.delays == [0.1, 0.2]
    samples = await scrape(metrics.registry)
    assert value(samples, "orchestrator_step_retries_total", workflow="flaky") == 2
    duration = "orchestrator_step_duration_seconds"
    assert value(samples, f"{duration}_count", workflow="flaky", step_type="sequential") == 1
    assert value(samples, f"{duration}_sum", workflow="flaky", step_type="sequential") == (
        pytest.approx(0.3)
    )
    assert value(samples, "orchestrator_run_duration_seconds_sum", workflow="flaky") == (
        pytest.approx(0.3)
    )


async def test_circuit_breaker_state_is_open_after_failures(make_orch: Any) -> None:
    """With failure_threshold 1, one failure opens the action's breaker: the gauge shows 2."""
    metrics = MetricsCollector()
    orch = make_orch(_registry(), {"failure_threshold": 1}, hooks=[metrics])
    await orch.execute_workflow(_failing(), {})
    samples = await scrape(metrics.registry)
    assert value(samples, "orchestrator_circuit_breaker_state", action="boom") == 2
    assert value(samples, "orchestrator_circuit_breaker_state", action="ok") is None


async def test_decisions_are_counted_by_strategy(make_orch: Any) -> None:
    """A two-step chain makes two sequential decisions; two independent steps one parallel."""
    metrics = MetricsCollector()
    orch = make_orch(_registry(), hooks=[metrics])
    await orch.execute_workflow(_seq(), {})
    fan = _workflow("fan", {"step_id": "x", "action": "ok"}, {"step_id": "y", "action": "ok"})
    await orch.execute_workflow(fan, {})
    samples = await scrape(metrics.registry)
    decisions = "orchestrator_decisions_total"
    assert value(samples, decisions, workflow="seq", strategy="sequential") == 2
    assert value(samples, decisions, workflow="fan", strategy="parallel") == 1


async def test_approvals_pending_rises_on_request_and_falls_on_decision(make_orch: Any) -> None:
    """A run waiting for approval shows one pending approval and stays active until decided."""
    metrics = MetricsCollector()
    orch = make_orch(_registry(), hooks=[metrics])
    run = await orch.execute_workflow(_approval(), {})
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    waiting = await scrape(metrics.registry)
    await orch.approve(run.run_id, "dana")
    decided = await scrape(metrics.registry)
    assert value(waiting, "orchestrator_approvals_pending", workflow="approval") == 1
    assert value(waiting, "orchestrator_active_runs", workflow="approval") == 1
    assert value(decided, "orchestrator_approvals_pending", workflow="approval") == 0
    assert value(decided, "orchestrator_active_runs", workflow="approval") == 0


async def test_a_decision_seen_without_its_request_never_goes_negative(
    make_orch: Any,
) -> None:
    """A process that only approves (the request came from another process) stays at zero."""
    run = await make_orch(_registry()).execute_workflow(_approval(), {})
    metrics = MetricsCollector()
    await make_orch(_registry(), hooks=[metrics]).approve(run.run_id, "dana")
    samples = await scrape(metrics.registry)
    assert value(samples, "orchestrator_approvals_pending", workflow="approval") is None
    assert (
        value(samples, "orchestrator_runs_finished_total", workflow="approval", status="completed")
        == 1
    )


async def test_sla_breaches_are_counted_by_workflow() -> None:
    """`on_sla_breach` increments the breach counter of the workflow."""
    metrics = MetricsCollector()
    breach = {"target_seconds": 1.0, "actual_seconds": 2.5, "enforced": False}
    metrics.on_sla_breach(workflow_id="seq", run_id="R1", step_id="a", **breach)
    metrics.on_sla_breach(workflow_id="seq", run_id="R2", step_id=None, **breach)
    samples = await scrape(metrics.registry)
    assert value(samples, "orchestrator_sla_breaches_total", workflow="seq") == 2


async def test_no_label_value_is_a_run_id(make_orch: Any) -> None:
    """Labels carry workflows, statuses and types only: no sample names a run id."""
    metrics = MetricsCollector()
    orch = make_orch(_registry(), hooks=[metrics])
    run_ids = {
        (await orch.execute_workflow(wf, {}, run_id=f"RUN-{i}")).run_id
        for i, wf in enumerate((_seq(), _failing(), _approval(), _routed()))
    }
    samples = await scrape(metrics.registry)
    label_values = {v for _, labels in samples for _, v in labels}
    assert label_values
    assert not label_values & run_ids


async def test_each_collector_has_its_own_registry(make_orch: Any) -> None:
    """Two collectors built without a registry do not share counts."""
    first, second = MetricsCollector(), MetricsCollector()
    await make_orch(_registry(), hooks=[first]).execute_workflow(_seq(), {})
    assert first.registry is not second.registry
    samples = await scrape(second.registry)
    assert value(samples, "orchestrator_runs_started_total", workflow="seq") is None


async def test_collector_uses_the_registry_it_is_given(make_orch: Any) -> None:
    """A registry passed in receives the metrics."""
    registry = CollectorRegistry()
    metrics = MetricsCollector(registry=registry)
    await make_orch(_registry(), hooks=[metrics]).execute_workflow(_seq(), {})
    samples = await scrape(registry)
    assert value(samples, "orchestrator_runs_started_total", workflow="seq") == 1


async def test_database_collector_reports_runs_recorded_in_the_database(
    make_orch: Any, db_url: str
) -> None:
    """Runs of the database show by workflow and status, with pending approvals and activity."""
    orch = make_orch(_registry())
    await orch.execute_workflow(_seq(), {})
    await orch.execute_workflow(_failing(), {})
    await orch.execute_workflow(_failing(), {})
    await orch.execute_workflow(_approval(), {})
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(db_url))
    samples = await scrape(registry)
    assert value(samples, "orchestrator_runs", workflow="seq", status="completed") == 1
    assert value(samples, "orchestrator_runs", workflow="failing", status="failed") == 2
    assert value(samples, "orchestrator_runs", workflow="approval", status="waiting_approval") == 1
    assert value(samples, "orchestrator_approvals_pending", workflow="approval") == 1
    assert value(samples, "orchestrator_active_runs", workflow="approval") == 1
    assert value(samples, "orchestrator_active_runs", workflow="failing") == 0


async def test_database_collector_of_a_missing_database_reports_nothing(tmp_path: Path) -> None:
    """A database file that does not exist yields empty families and is not created."""
    missing = tmp_path / "nowhere" / "runs.sqlite"
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(f"sqlite:///{missing}"))
    samples = await scrape(registry)
    assert not [name for name, _ in samples if name.startswith("orchestrator_")]
    assert not missing.exists()


async def test_database_collector_clashes_with_live_gauges_on_one_registry() -> None:
    """Registering both collectors on one registry fails: they share gauge names."""
    registry = CollectorRegistry()
    MetricsCollector(registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(DatabaseCollector("sqlite:///unused.sqlite"))


async def test_metrics_endpoint_serves_a_running_commands_metrics(make_orch: Any) -> None:
    """`--metrics-port`'s endpoint serves the live metrics of the runs of the process."""
    orch = make_orch(_registry())
    with metrics_endpoint(orch, 0) as server:
        assert server is not None
        await orch.execute_workflow(_seq(), {})
        samples = await _get(server.server_port)
    assert value(samples, "orchestrator_runs_started_total", workflow="seq") == 1


ACTIONS = """
from orchestrator import ActionRegistry

registry = ActionRegistry()


@registry.action("ok")
async def ok() -> dict:
    return {"ok": True}
"""

WORKFLOW = """
name: CLI happy
workflow_id: cli-happy
actions: cli_actions
steps:
  - {step_id: a, action: ok}
  - {step_id: b, action: ok, dependencies: [a]}
"""


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliWorkspace:
    """A database holding one completed run of `cli-happy`, made by `orchestrator run`."""
    ws = CliWorkspace(tmp_path_factory.mktemp("cli"))
    (ws.root / "cli_actions.py").write_text(ACTIONS, encoding="utf-8")
    (ws.root / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
    assert ws.cli("run", "wf.yaml").returncode == 0
    return ws


def test_cli_metrics_once_prints_runs_from_the_database(cli_run: CliWorkspace) -> None:
    """`orchestrator metrics --once` after a CLI run prints `orchestrator_runs` of the db."""
    out = cli_run.cli("metrics", "--once")
    assert out.returncode == 0, out.stderr
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(out.stdout)
        for s in family.samples
    }
    assert value(samples, "orchestrator_runs", workflow="cli-happy", status="completed") == 1


async def test_cli_metrics_serves_the_database_until_interrupted(cli_run: CliWorkspace) -> None:
    """`orchestrator metrics --port 0` serves /metrics over HTTP and exits 0 on Ctrl-C."""
    server = subprocess.Popen(
        cli_run.command("metrics", "--port", "0"),
        cwd=cli_run.root,
        env=cli_run.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        port = int(banner.split("http://127.0.0.1:")[1].split("/")[0])
        samples = await _get(port)
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=30)
    assert value(samples, "orchestrator_runs", workflow="cli-happy", status="completed") == 1
    assert code == 0
