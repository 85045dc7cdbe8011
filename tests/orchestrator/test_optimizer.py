"""`optimize`: statistics and recommendations from real runs recorded in a SQLite file.

The history: five runs of `shop` (a step that fails its first attempt, one failing in two runs
under `continue_on_failure`, then a slow one near its timeout and over its SLA, skipped when
the failure skipped what waits for it) and five of `route`
(a conditional whose `big` branch is never taken). Durations come from an injected clock that
the slow action advances, so nothing waits for real.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import MSGPACK_WARNINGS, FakeClock

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator, StepContext
from orchestrator._cli_optimize import cmd_optimize
from orchestrator._optimizer import Recommendation, Report, StepStats, WorkflowStats, analyse
from state import AdvancedWorkflow, WorkflowStatus

SHOP = AdvancedWorkflow.from_dict(
    {
        "name": "shop",
        "retry_policy": {"max_attempts": 3, "initial_delay": 0, "jitter": 0},
        "sla_targets": {"steps": {"slow": 5}},
        "steps": [
            {"step_id": "fetch", "action": "flaky", "output_mapping": {"item": "@"}},
            {
                "step_id": "charge",
                "action": "charge",
                "dependencies": ["fetch"],
                "continue_on_failure": True,
                "retry_policy": {"max_attempts": 1},
                "input_mapping": {"item": "context.item", "fail": "input.fail"},
            },
            {"step_id": "slow", "action": "slow", "dependencies": ["charge"], "timeout": 10},
        ],
    }
)

ROUTE = AdvancedWorkflow.from_dict(
    {
        "name": "route",
        "steps": [
            {
                "step_id": "pick",
                "step_type": "conditional",
                "conditions": [{"if": "input.big", "then": ["big"]}, {"else": ["small"]}],
            },
            {"step_id": "big", "action": "noop"},
            {"step_id": "small", "action": "noop"},
        ],
    }
)


def _registry(clock: FakeClock) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("flaky")
    async def flaky(ctx: StepContext) -> dict[str, str]:
        if ctx.attempt == 1:
            raise ConnectionError("first attempt always drops")
        return {"sku": "A-1"}

    @registry.action("charge")
    async def charge(item: dict[str, str], fail: bool) -> dict[str, bool]:
        if fail:
            raise ValueError(f"card declined for {item['sku']}")
        return {"charged": True}

    @registry.action("slow")
    async def slow() -> dict[str, bool]:
        clock.advance(9.0)
        return {"done": True}

    @registry.action("noop")
    async def noop() -> dict[str, bool]:
        return {}

    return registry


@pytest.fixture
async def history(make_orch: Any, db_url: str) -> str:
    """Ten finished runs in the test's database; returns its URL."""
    clock = FakeClock()
    orch = make_orch(_registry(clock), clock=clock)
    for fail in (True, False, True, False, False):
        run = await orch.execute_workflow(SHOP, {"fail": fail})
        assert run.status is WorkflowStatus.COMPLETED, run.error
    for _ in range(5):
        run = await orch.execute_workflow(ROUTE, {"big": False})
        assert run.status is WorkflowStatus.COMPLETED, run.error
    await orch.aclose()
    return db_url


async def _report(db_url: str, workflow_id: str | None = None) -> Report:
    return await analyse(EnterpriseWorkflowOrchestrator(checkpointer=db_url), workflow_id)


def _workflow(report: Report, workflow_id: str) -> WorkflowStats:
    return next(w for w in report.workflows if w.workflow_id == workflow_id)


def _step(report: Report, workflow_id: str, step_id: str) -> StepStats:
    return next(s for s in _workflow(report, workflow_id).steps if s.step_id == step_id)


def _kinds(report: Report, workflow_id: str, step_id: str | None) -> list[str]:
    return [
        r.kind.value
        for r in report.recommendations
        if (r.workflow_id, r.step_id) == (workflow_id, step_id)
    ]


def _only(report: Report, kind: str) -> Recommendation:
    (rec,) = [r for r in report.recommendations if r.kind.value == kind]
    return rec


async def test_workflow_stats_count_runs_statuses_and_durations(history: str) -> None:
    """Per workflow: runs, runs per status, success rate, mean and p95 duration."""
    shop = _workflow(await _report(history), "shop")
    assert (shop.runs, shop.by_status, shop.success_rate) == (5, {"completed": 5}, 1.0)
    # `slow` (9 s) runs only when `charge` succeeded: three runs of 9 s, two of 0 s
    assert shop.mean_duration_seconds == pytest.approx(5.4)
    assert shop.p95_duration_seconds == 9.0


async def test_step_stats_in_definition_order(history: str) -> None:
    """Steps are listed in the order the definition declares them."""
    shop = _workflow(await _report(history), "shop")
    assert [s.step_id for s in shop.steps] == ["fetch", "charge", "slow"]


async def test_step_stats_failure_rate_of_a_step_failing_in_some_runs(history: str) -> None:
    """A failure tolerated by continue_on_failure counts as a failure, not as a skip."""
    charge = _step(await _report(history), "shop", "charge")
    assert (charge.executed, charge.failures, charge.failure_rate, charge.skips) == (5, 2, 0.4, 0)


async def test_step_stats_mean_attempts_count_retries(history: str) -> None:
    """A step that always needs a second attempt averages two attempts."""
    assert _step(await _report(history), "shop", "fetch").mean_attempts == 2.0


async def test_step_stats_durations_come_from_the_run_clock(history: str) -> None:
    """Mean and p95 durations are those of the runs the step executed in."""
    slow = _step(await _report(history), "shop", "slow")
    assert (slow.executed, slow.skips) == (3, 2)
    assert (slow.mean_duration_seconds, slow.p95_duration_seconds) == (9.0, 9.0)


async def test_step_stats_skip_rate_of_an_untaken_branch(history: str) -> None:
    """A branch never routed to is skipped in every run."""
    big = _step(await _report(history), "route", "big")
    assert (big.runs, big.executed, big.skip_rate) == (5, 0, 1.0)


async def test_failing_step_is_recommended(history: str) -> None:
    """A step failing in at least 20% of its runs gets a `failing` recommendation."""
    rec = _only(await _report(history), "failing")
    assert (rec.step_id, rec.evidence["failure_rate"]) == ("charge", 0.4)
    assert "tolerated (continue_on_failure)" in rec.message


async def test_flaky_step_is_recommended(history: str) -> None:
    """A step averaging more than 1.5 attempts gets a `flaky` recommendation."""
    rec = _only(await _report(history), "flaky")
    assert (rec.step_id, rec.evidence) == ("fetch", {"mean_attempts": 2.0, "max_attempts": 3})


async def test_step_near_its_timeout_is_recommended(history: str) -> None:
    """A p95 duration over 80% of the step's timeout gets `near_timeout`."""
    rec = _only(await _report(history), "near_timeout")
    assert (rec.step_id, rec.evidence) == ("slow", {"p95_duration_seconds": 9.0, "timeout": 10})


async def test_step_not_reading_its_dependency_could_run_in_parallel(history: str) -> None:
    """`slow` depends on `charge` but reads nothing of it; `charge` reads `fetch`'s output."""
    report = await _report(history)
    rec = _only(report, "parallelizable")
    assert (rec.step_id, rec.evidence) == ("slow", {"dependency": "charge"})


async def test_branch_never_taken_is_recommended(history: str) -> None:
    """A conditional target not chosen in five runs gets `branch_never_taken`."""
    rec = _only(await _report(history), "branch_never_taken")
    assert (rec.workflow_id, rec.step_id, rec.evidence) == (
        "route",
        "big",
        {"conditional": "pick", "runs": 5},
    )


async def test_sla_breaches_are_recommended(history: str) -> None:
    """Runs flagged `sla_breached` give one workflow-wide recommendation with the count."""
    rec = _only(await _report(history), "sla_breached")
    assert (rec.workflow_id, rec.step_id) == ("shop", None)
    assert (rec.evidence["runs_flagged"], rec.evidence["runs"]) == (3, 5)


async def test_recommendations_are_ordered_by_workflow_step_and_kind(history: str) -> None:
    """Workflow-wide advice comes first, then steps by id, kinds in their declared order."""
    report = await _report(history)
    assert [(r.workflow_id, r.step_id, r.kind.value) for r in report.recommendations] == [
        ("route", "big", "branch_never_taken"),
        ("shop", None, "sla_breached"),
        ("shop", "charge", "failing"),
        ("shop", "fetch", "flaky"),
        ("shop", "slow", "near_timeout"),
        ("shop", "slow", "parallelizable"),
    ]


async def test_workflow_filter_limits_the_report(history: str) -> None:
    """`workflow_id` reports on that workflow only."""
    report = await _report(history, "route")
    assert [w.workflow_id for w in report.workflows] == ["route"]
    assert {r.workflow_id for r in report.recommendations} == {"route"}


async def test_missing_database_has_no_runs_and_is_not_created(tmp_path: Path) -> None:
    """A SQLite file that does not exist gives an empty report and stays absent."""
    report = await _report(f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert report == Report([], [])
    assert not (tmp_path / "none.sqlite").exists()


async def test_command_json_is_one_object_of_workflows_and_recommendations(
    history: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`optimize --json` prints `{"workflows": [...], "recommendations": [...]}` and exits 0."""
    args = argparse.Namespace(db=history, json=True, workflow=None)
    assert await asyncio.to_thread(cmd_optimize, args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"workflows", "recommendations"}
    assert [w["workflow_id"] for w in printed["workflows"]] == ["route", "shop"]
    assert printed["recommendations"][0]["kind"] == "branch_never_taken"


async def test_command_table_numbers_the_recommendations(
    history: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report shows per-workflow stats and numbered recommendations."""
    args = argparse.Namespace(db=history, json=False, workflow="shop")
    assert await asyncio.to_thread(cmd_optimize, args) == 0
    out = capsys.readouterr().out
    assert "workflow shop: 5 run(s) (5 completed), 100% succeeded" in out
    assert "  1. [sla_breached] shop: 3 of 5 runs breached an SLA target" in out
    assert "  2. [failing] shop/charge: fails in 2 of 5 runs (40%)" in out


def test_command_without_runs_says_so_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no run database, `optimize` says nothing was recorded and exits 0."""
    db = f"sqlite:///{tmp_path / 'none.sqlite'}"
    assert cmd_optimize(argparse.Namespace(db=db, json=False, workflow=None)) == 0
    assert capsys.readouterr().out.startswith("no runs recorded yet in ")
    assert not (tmp_path / "none.sqlite").exists()


async def test_cli_optimize_json_exits_0(history: str, tmp_path: Path) -> None:
    """`orchestrator optimize --db URL --json` as a real process prints the report."""
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
    env["LANGGRAPH_STRICT_MSGPACK"] = "true"
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "orchestrator", "optimize", "--db", history, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert not [w for w in MSGPACK_WARNINGS if w in proc.stderr], proc.stderr
    kinds = [r["kind"] for r in json.loads(proc.stdout)["recommendations"]]
    assert kinds == [
        "branch_never_taken",
        "sla_breached",
        "failing",
        "flaky",
        "near_timeout",
        "parallelizable",
    ]
