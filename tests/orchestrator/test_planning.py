"""Adaptive planning: a scripted planner writes the workflow, repaired once, then it runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import ActionRegistry
from orchestrator.testing import ScriptedChatModel
from state import PlanError, WorkflowStatus

FIXTURES = Path(__file__).parent / "fixtures"


def _registry(script: list[Any]) -> tuple[ActionRegistry, ScriptedChatModel]:
    registry = ActionRegistry()

    @registry.action("greet")
    def greet(name: str) -> dict[str, Any]:
        """Say hello to someone."""
        return {"text": f"hello {name}"}

    model = ScriptedChatModel(script=script)
    registry.add_agent("planner", model)
    return registry, model


GOOD = {
    "name": "Greeting",
    "steps": [
        {
            "step_id": "hi",
            "action": "greet",
            "input_mapping": {"name": "input.who"},
            "output_mapping": {"greeting": "text"},
        }
    ],
}


async def test_execute_task_plans_audits_and_runs(make_orch: Any) -> None:
    """The planned workflow runs, and the plan is in the run's audit trail."""
    registry, model = _registry([GOOD])
    orch = make_orch(registry)
    run = await orch.execute_task("Greet the user", {"who": "Ada"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["greeting"] == "hello Ada"
    assert "greet: action. Say hello to someone." in str(model.calls[0][0].content)
    plans = [e for e in await orch.audit_trail(run.run_id) if e["event"] == "plan_recorded"]
    assert plans[0]["data"]["task"] == "Greet the user"
    assert plans[0]["data"]["plan"]["steps"][0]["action"] == "greet"


async def test_invalid_plan_is_repaired_once(make_orch: Any) -> None:
    """The validation problems go back to the planner, whose second plan is used."""
    bad = {"name": "Greeting", "steps": [{"step_id": "hi", "action": "wave"}]}
    registry, model = _registry([bad, GOOD])
    plan = await make_orch(registry).plan_workflow("Greet", input_data={"who": "x"})
    assert plan.repaired is True
    assert "wave" in str(model.calls[1][-1].content)


async def test_plan_invalid_twice_fails_clearly(make_orch: Any) -> None:
    """Two invalid plans raise PlanError naming the problems."""
    bad = {"name": "Loop", "steps": [{"step_id": "a", "action": "greet", "dependencies": ["a"]}]}
    registry, _ = _registry([bad])
    with pytest.raises(PlanError, match="depends on itself"):
        await make_orch(registry).plan_workflow("Loop forever")


async def test_plan_can_require_approval(make_orch: Any) -> None:
    """With approvers the run waits for a human before any planned step runs."""
    registry, _ = _registry([GOOD])
    orch = make_orch(registry)
    run = await orch.execute_task("Greet", {"who": "Bo"}, approvers=["alice"])
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    assert run.completed_steps == []
    done = await orch.approve(run.run_id, approver="alice")
    assert done.status is WorkflowStatus.COMPLETED


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**__import__("os").environ, "LANGGRAPH_STRICT_MSGPACK": "true"},
    )


def test_cli_plan_prints_and_runs(tmp_path: Path) -> None:
    """`plan TASK` prints the repaired definition; `plan TASK --run` runs it (exit 0)."""
    shutil.copy(FIXTURES / "planned_actions.py", tmp_path / "planned_actions.py")
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    shown = _cli(tmp_path, "plan", "Average prices", "--actions", "planned_actions", "--db", db)
    assert shown.returncode == 0, shown.stderr
    definition = yaml.safe_load(shown.stdout)
    assert definition["actions"] == "planned_actions"
    assert [s["action"] for s in definition["steps"]] == ["fetch_prices", "average"]
    ran = _cli(
        tmp_path,
        "plan",
        "Average prices",
        "--actions",
        "planned_actions",
        "--run",
        "--input",
        '{"ticker": "ACME"}',
        "--json",
        "--db",
        db,
    )
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert out["status"] == "completed"
    assert out["result"]["mean"] == 11
    trail = _cli(tmp_path, "audit", out["run_id"], "--format", "jsonl", "--db", db)
    assert "plan_recorded" in trail.stdout
