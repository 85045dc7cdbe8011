"""`orch.astream(...)` yields step events as they happen; `run --follow` prints them."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import CliWorkspace

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from state import AdvancedWorkflow, InvalidInputError

FIXTURES = Path(__file__).parent / "fixtures"


def _registry(order: list[str]) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("work")
    async def work(name: str) -> dict[str, str]:
        order.append(f"ran {name}")
        return {"done": name}

    @registry.action("broken")
    async def broken() -> None:
        raise ConnectionError("down")

    return registry


def _workflow(*extra: dict[str, Any]) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "streamed",
            "workflow_id": "streamed",
            "retry_policy": {"max_attempts": 2, "initial_delay": 0, "jitter": 0},
            "steps": [
                {"step_id": "a", "action": "work", "input_mapping": {"name": "'a'"}},
                {
                    "step_id": "b",
                    "action": "work",
                    "dependencies": ["a"],
                    "input_mapping": {"name": "'b'"},
                },
                *extra,
            ],
        }
    )


async def test_events_arrive_while_the_run_goes_on(make_orch: Any) -> None:
    """The caller sees `step_started` while the step is still running, and events in order."""
    started = asyncio.Event()
    registry = _registry([])

    @registry.action("gate")
    async def gate() -> None:
        # finishes only once the caller has seen this step start: the stream is live
        await asyncio.wait_for(started.wait(), timeout=30)

    orch: EnterpriseWorkflowOrchestrator = make_orch(registry)
    wf = _workflow({"step_id": "g", "action": "gate", "dependencies": ["b"]})
    seen: list[str] = []
    async for event in orch.astream(wf, {}):
        if event["event"] == "step_started" and event["step_id"] == "g":
            started.set()
        if event.get("step_id"):
            seen.append(f"{event['event']} {event['step_id']} {event['step_type']}")
        if event["event"] == "run_result":
            seen.append(f"result {event['status']}")
    assert seen == [
        "step_started a sequential",
        "step_completed a sequential",
        "step_started b sequential",
        "step_completed b sequential",
        "step_started g sequential",
        "step_completed g sequential",
        "result completed",
    ]


async def test_failures_retries_and_waits_are_events(make_orch: Any) -> None:
    """A retried failing step yields retry and failed events; an approval yields who may
    approve, and the final event says the run waits."""
    orch = make_orch(_registry([]))
    events = [
        e
        async for e in orch.astream(
            _workflow(
                {
                    "step_id": "c",
                    "action": "broken",
                    "dependencies": ["b"],
                    "retry_policy": {"continue_on_failure": True},
                },
                {
                    "step_id": "ok",
                    "step_type": "human_approval",
                    "dependencies": ["b", "c"],
                    "approval": {"approvers": ["ben", "chloe"], "min_approvals": 2},
                },
            ),
            {},
        )
    ]
    kinds = [(e["event"], e.get("step_id")) for e in events]
    assert ("step_retry", "c") in kinds
    assert ("step_skipped", "c") in kinds  # continue_on_failure: a failure becomes a skip
    waiting = next(e for e in events if e["event"] == "step_waiting")
    assert waiting["approvers"] == ["ben", "chloe"]
    assert waiting["min_approvals"] == 2
    assert events[-1]["event"] == "run_result"
    assert events[-1]["status"] == "waiting_approval"


async def test_other_stream_modes_pass_through(make_orch: Any) -> None:
    """A list of modes yields LangGraph's `(mode, chunk)` pairs, updates included."""
    orch = make_orch(_registry([]))
    items = [i async for i in orch.astream(_workflow(), {}, stream_mode=["updates", "custom"])]
    modes = {mode for mode, _ in items}
    assert modes == {"updates", "custom"}
    updates = [chunk for mode, chunk in items if mode == "updates"]
    assert any("orchestrator" in chunk for chunk in updates)
    assert items[-1][1]["event"] == "run_result"
    only = [i async for i in orch.astream(_workflow(), {}, stream_mode="values")]
    assert only[-1]["status"] == "completed"


async def test_an_unknown_stream_mode_is_refused(make_orch: Any) -> None:
    """A misspelt stream mode is refused before anything runs, naming the valid ones."""
    order: list[str] = []
    orch = make_orch(_registry(order))
    with pytest.raises(InvalidInputError, match=r"unknown stream_mode 'custon'.*custom"):
        async for _ in orch.astream(_workflow(), {}, stream_mode="custon"):  # type: ignore[arg-type]
            pass
    assert order == []


def test_run_follow_prints_step_events(tmp_path: Path) -> None:
    """`run --follow` prints a line per step event, then the run summary."""
    shutil.copy(FIXTURES / "crashy_actions.py", tmp_path)
    shutil.copy(FIXTURES / "approval.yaml", tmp_path)
    ws = CliWorkspace(tmp_path)
    data = json.dumps({"workdir": str(tmp_path)})
    run = ws.cli("run", "approval.yaml", "--input", data, "--follow")
    assert run.returncode == 3, run.stderr
    lines = [line.split() for line in run.stdout.splitlines()]
    assert ["started", "prepare", "(sequential)"] in lines
    assert lines.index(["started", "prepare", "(sequential)"]) < next(
        i for i, line in enumerate(lines) if line[:2] == ["completed", "prepare"]
    )
    assert "waiting    sign_off for 1 approval by one of: dana" in run.stdout
    assert "waiting_approval" in run.stdout
