"""`orchestrator optimize [--workflow ID] [--apply OUT.yaml] [--verify] [--json]` as a real
process on a database holding real runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import MSGPACK_WARNINGS, CliWorkspace

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator, load_workflow
from state import AdvancedWorkflow, WorkflowStatus

CHAIN = """\
name: chain
steps:
  - {step_id: a, action: nap, output_mapping: {a: "@"}}
  - {step_id: b, action: nap, dependencies: [a]}
  - {step_id: c, action: nap, dependencies: [b], input_mapping: {v: context.a}}
"""


def _registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("nap")
    async def nap(v: Any = None) -> str:
        await asyncio.sleep(0.03)
        return "z"

    return registry


async def _runs(db: str, workflow: AdvancedWorkflow, times: int) -> None:
    orch = EnterpriseWorkflowOrchestrator(registry=_registry(), checkpointer=db)
    for _ in range(times):
        assert (await orch.execute_workflow(workflow, {})).status is WorkflowStatus.COMPLETED
    await orch.aclose()


@pytest.fixture
async def ws(tmp_path: Path) -> CliWorkspace:
    """A workspace whose database holds three runs of `chain` 1.0."""
    (tmp_path / "chain.yaml").write_text(CHAIN, encoding="utf-8")
    space = CliWorkspace(tmp_path)
    await _runs(space.db, load_workflow(tmp_path / "chain.yaml"), 3)
    return space


async def _cli(ws: CliWorkspace, *args: str) -> Any:
    proc = await asyncio.to_thread(ws.cli, *args)
    assert not [w for w in MSGPACK_WARNINGS if w in proc.stderr], proc.stderr
    return proc


async def test_json_report_has_metrics_and_recommendations(ws: CliWorkspace) -> None:
    """`optimize --json` exits 0 with metrics and prioritised recommendations per workflow."""
    proc = await _cli(ws, "optimize", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    (block,) = out["workflows"]
    assert (block["workflow_id"], block["version"], block["metrics"]["runs"]) == ("chain", "1.0", 3)
    assert 0 <= block["metrics"]["optimization_score"] <= 100
    top = out["recommendations"][0]
    assert (top["type"], top["priority"]) == ("parallelization", 9)
    assert {c["step_id"]: c["to"] for c in top["specific_changes"]} == {"b": [], "c": ["a"]}


async def test_text_report_shows_steps_and_numbered_recommendations(ws: CliWorkspace) -> None:
    """The text report has a step table and the recommendations with their edits."""
    proc = await _cli(ws, "optimize", "--workflow", "chain")
    assert proc.returncode == 0, proc.stderr
    assert "workflow chain version 1.0: 3 run(s) (3 completed)" in proc.stdout
    assert "1. [parallelization p9" in proc.stdout
    assert "set b.dependencies: ['a'] -> []" in proc.stdout


async def test_apply_writes_the_optimized_definition_and_verify_measures_it(
    ws: CliWorkspace,
) -> None:
    """`--apply OUT.yaml` writes a valid version 1.1; runs of it are verified against the
    prediction."""
    proc = await _cli(ws, "optimize", "--workflow", "chain", "--apply", "fast.yaml", "--json")
    assert proc.returncode == 0, proc.stderr
    applied = json.loads(proc.stdout)["applied"]
    assert (applied["from_version"], applied["version"]) == ("1.0", "1.1")
    faster = load_workflow(ws.root / "fast.yaml")
    assert (faster.version, faster.step("b").dependencies) == ("1.1", [])
    assert faster.optimized_from is not None
    await _runs(ws.db, faster, 2)
    proc = await _cli(ws, "optimize", "--workflow", "chain", "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    (check,) = json.loads(proc.stdout)["verification"]
    assert (check["base_version"], check["version"]) == ("1.0", "1.1")
    assert (check["runs_before"], check["runs_after"]) == (3, 2)
    # timing against the prediction is test_parallelization's job; here: both were measured
    assert check["after_seconds"] > 0
    assert check["before_seconds"] > 0
    assert check["verdict"] != "not_enough_runs"
    text = await _cli(ws, "optimize", "--workflow", "chain", "--verify")
    assert "verify chain 1.0 -> 1.1: 3 run(s) before, 2 after" in text.stdout


async def test_apply_with_several_workflows_asks_for_one(ws: CliWorkspace) -> None:
    """With runs of two workflows, `--apply` without `--workflow` exits 2 naming the fix."""
    other = AdvancedWorkflow.from_dict({"name": "other", "steps": [{"step_id": "x",
                                                                   "action": "nap"}]})  # fmt: skip
    await _runs(ws.db, other, 2)
    proc = await _cli(ws, "optimize", "--apply", "out.yaml")
    assert proc.returncode == 2
    assert "choose one with --workflow ID" in proc.stderr
    assert not (ws.root / "out.yaml").exists()


async def test_without_runs_it_says_so_and_exits_0(tmp_path: Path) -> None:
    """No database: a message, exit 0, and no database file created."""
    ws = CliWorkspace(tmp_path)
    proc = await _cli(ws, "optimize")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no runs recorded yet in ")
    assert not (tmp_path / "runs.sqlite").exists()


async def test_nightly_report_example_is_recommended_its_parallel_schedule(db_url: str) -> None:
    """The README's example: three runs give one low-risk parallelization recommendation."""
    from orchestrator import WorkflowOptimizer

    workflow = load_workflow("examples/nightly_report/workflow.yaml")
    orch = EnterpriseWorkflowOrchestrator(checkpointer=db_url)
    for day in ("2026-11-26", "2026-11-27"):
        run = await orch.execute_workflow(workflow, {"day": day})
        assert run.status is WorkflowStatus.COMPLETED, run.error
    opt = WorkflowOptimizer(orch)
    (rec,) = await opt.recommend(workflow)
    assert (rec.type.value, rec.risk.value) == ("parallelization", "low")
    assert opt.apply(workflow, [rec]).step("summary").dependencies == ["sales", "stock", "web"]
    await orch.aclose()
