"""Dynamic orchestrator-worker: planned and `for_each` fan-outs, reduce, repair, crashes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from orchestrator.testing import ScriptedChatModel
from state import AdvancedWorkflow, WorkflowStatus

FIXTURES = Path(__file__).parent / "fixtures"


def _registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("plan")
    def plan(topic: str) -> list[dict[str, Any]]:
        return [{"capability": "search", "input": {"q": f"{topic}-{i}"}} for i in range(3)]

    @registry.action("search")
    async def search(q: str) -> dict[str, Any]:
        if q.startswith("bad"):
            raise ValueError(f"no results for {q}")
        return {"hit": q.upper()}

    @registry.action("brief")
    def brief(results: list[dict[str, Any]], subtasks: list[Any]) -> dict[str, Any]:
        return {"text": " / ".join(r["hit"] for r in results), "planned": len(subtasks)}

    return registry


def _wf(*steps: dict[str, Any], **extra: Any) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict({"name": "fan", "steps": list(steps), **extra})


async def test_planned_subtasks_fan_out_and_reduce(make_orch: Any) -> None:
    """An orchestrator step's plan runs one worker per subtask; `reduce` writes the output."""
    step = {
        "step_id": "research",
        "step_type": "orchestrator",
        "action": "plan",
        "input_mapping": {"topic": "input.topic"},
        "reduce": "brief",
        "output_mapping": {"brief": "text", "planned": "planned"},
    }
    orch = make_orch(_registry())
    run = await orch.execute_workflow(_wf(step), {"topic": "ai"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["brief"] == "AI-0 / AI-1 / AI-2"
    assert run.result["planned"] == 3
    trail = await orch.audit_trail(run.run_id)
    plans = [e for e in trail if e["event"] == "plan_recorded"]
    assert plans[0]["data"]["plan"][0] == {"capability": "search", "input": {"q": "ai-0"}}
    workers = {e["step_id"] for e in trail if e["event"] == "step_completed"}
    assert {"research#0", "research#1", "research#2"} <= workers


async def test_for_each_maps_a_list_without_a_planner(make_orch: Any) -> None:
    """`for_each` runs the action once per item, `item` in its input paths."""
    step = {
        "step_id": "look",
        "action": "search",
        "for_each": "input.queries",
        "input_mapping": {"q": "item"},
        "output_mapping": {"hits": "results[*].hit"},
    }
    run = await make_orch(_registry()).execute_workflow(_wf(step), {"queries": ["x", "y"]})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["hits"] == ["X", "Y"]


async def test_failed_workers_below_threshold_fail_the_step(make_orch: Any) -> None:
    """Too many failed workers fail the fan-out step, naming the failures."""
    step = {
        "step_id": "look",
        "action": "search",
        "for_each": "input.queries",
        "input_mapping": {"q": "item"},
        "retry_policy": {"max_attempts": 1, "parallel_failure_threshold": 0.9},
    }
    run = await make_orch(_registry()).execute_workflow(
        _wf(step), {"queries": ["ok", "bad-1", "bad-2"]}
    )
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "2 of 3 workers" in run.error["message"]


async def test_too_many_items_is_a_plan_error(make_orch: Any) -> None:
    """A `for_each` list longer than `max_subtasks` fails the step clearly."""
    step = {"step_id": "look", "action": "search", "for_each": "input.q", "max_subtasks": 2}
    run = await make_orch(_registry()).execute_workflow(_wf(step), {"q": ["a", "b", "c"]})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "max_subtasks=2" in run.error["message"]


async def test_model_planner_gets_one_repair_round(make_orch: Any) -> None:
    """An invalid model plan is sent back with its problems once, then the fixed plan runs."""
    bad = {"subtasks": [{"capability": "teleport", "input": {}}]}
    good = {"subtasks": [{"capability": "search", "input": {"q": "fixed"}}]}
    model = ScriptedChatModel(script=[bad, good])
    registry = _registry()
    registry.add_agent("planner", model)
    step = {
        "step_id": "research",
        "step_type": "orchestrator",
        "agent_capability": "planner",
        "workers": ["search"],
        "input_mapping": {"task": "input.task"},
        "output_mapping": {"hits": "results[*].hit"},
    }
    orch = make_orch(registry)
    run = await orch.execute_workflow(_wf(step), {"task": "find things"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["hits"] == ["FIXED"]
    assert "unknown capability 'teleport'" in str(model.calls[1][-1].content)
    plan = [e for e in await orch.audit_trail(run.run_id) if e["event"] == "plan_recorded"]
    assert plan[0]["data"]["repaired"] is True


async def test_model_planner_invalid_twice_fails_clearly(make_orch: Any) -> None:
    """A plan still invalid after the repair round fails the step with PlanError."""
    too_many = {"subtasks": [{"capability": "search", "input": {"q": str(i)}} for i in range(5)]}
    registry = _registry()
    registry.add_agent("planner", ScriptedChatModel(script=[too_many]))
    step = {
        "step_id": "research",
        "step_type": "orchestrator",
        "agent_capability": "planner",
        "max_subtasks": 2,
    }
    run = await make_orch(registry).execute_workflow(_wf(step), {"task": "t"})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "PlanError"
    assert "more than max_subtasks=2" in run.error["message"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
    env["LANGGRAPH_STRICT_MSGPACK"] = "true"
    return env


def _finished_workers(db: str, run_id: str) -> list[str]:
    async def read() -> list[str]:
        orch = EnterpriseWorkflowOrchestrator(checkpointer=db)
        try:
            await orch.status(run_id)
            state = await orch.graph.aget_state({"configurable": {"thread_id": run_id}})
            return sorted(state.values.get("worker_results", {}))
        except LookupError:
            return []
        finally:
            await orch.aclose()

    return asyncio.run(read())


def test_crash_mid_fan_out_reruns_only_unfinished_workers(tmp_path: Path) -> None:
    """SIGKILL while one worker hangs: resume runs that worker again and no other."""
    for source in FIXTURES.iterdir():
        if source.is_file():
            shutil.copy(source, tmp_path / source.name)
    work = tmp_path / "work"
    work.mkdir()
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    payload = json.dumps({"workdir": str(work), "items": ["a", "b", "slow"]})
    base = [sys.executable, "-m", "orchestrator"]
    proc = subprocess.Popen(
        [*base, "run", "dynamic.yaml", "--input", payload, "--db", db, "--run-id", "D1"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (work / "slow.started").exists() or _finished_workers(db, "D1") != [
            "fan#0",
            "fan#1",
        ]:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the fan-out never reached its slow worker")
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    (work / "fast").touch()
    resumed = subprocess.run(
        [*base, "resume", "D1", "--db", db, "--json"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["result"]["done"] == ["a", "b", "slow"]
    effects = [line.split(" ")[0] for line in (work / "effects.log").read_text().splitlines()]
    assert effects.count("fan#0") == 1
    assert effects.count("fan#1") == 1
    assert effects.count("fan#2") == 2
    assert effects.count("after") == 1
