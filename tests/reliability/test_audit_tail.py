"""The audit chain head of every run, failed and cancelled included, covers its last entry."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import saga_step

from orchestrator import ActionRegistry
from state import AdvancedWorkflow, WorkflowStatus


def _registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("do")
    async def do(name: str) -> dict[str, str]:
        if name == "boom":
            raise RuntimeError("boom")
        return {"done": name}

    @registry.action("undo")
    async def undo() -> None:
        return None

    return registry


def _workflow(fail: bool) -> AdvancedWorkflow:
    steps = [saga_step("a"), saga_step("b", ["a"])]
    if fail:
        steps.append(
            {
                "step_id": "boom",
                "action": "do",
                "dependencies": ["b"],
                "input_mapping": {"name": "'boom'"},
            }
        )
    return AdvancedWorkflow.from_dict({"name": "tail", "steps": steps})


def _drop_last_entry(db_url: str, run_id: str) -> str:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        # a tamperer with the file drops the append-only triggers first
        db.execute("DROP TRIGGER IF EXISTS orchestrator_audit_no_delete")
        seq, event = db.execute(
            "SELECT seq, event FROM orchestrator_audit WHERE run_id=? ORDER BY seq DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        db.execute("DELETE FROM orchestrator_audit WHERE run_id=? AND seq=?", (run_id, seq))
    return str(event)


@pytest.mark.parametrize("outcome", ["failed", "completed"])
async def test_removing_the_last_entry_is_detected(
    make_orch: Any, db_url: str, outcome: str
) -> None:
    """Deleting `run_finished` of a failed (compensated) or completed run fails verification."""
    orch = make_orch(_registry())
    run = await orch.execute_workflow(_workflow(fail=outcome == "failed"))
    assert run.status.value == outcome
    assert (await orch.verify_audit(run.run_id)).ok
    assert _drop_last_entry(db_url, run.run_id) == "run_finished"
    result = await orch.verify_audit(run.run_id)
    assert not result.ok
    assert "removed" in result.reason


async def test_removing_the_tail_of_a_cancelled_run_is_detected(
    make_orch: Any, db_url: str
) -> None:
    """A cancelled run's trail ends in a head its state recorded: removing it is detected."""
    registry = _registry()
    orch = make_orch(registry)
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "wait",
            "steps": [
                saga_step("a"),
                {
                    "step_id": "ok",
                    "step_type": "human_approval",
                    "dependencies": ["a"],
                    "approval": {"approvers": ["ada"]},
                },
            ],
        }
    )
    run = await orch.execute_workflow(workflow)
    cancelled = await orch.cancel(run.run_id, compensate=True)
    assert cancelled.status is WorkflowStatus.CANCELLED
    assert (await orch.verify_audit(run.run_id)).ok
    _drop_last_entry(db_url, run.run_id)
    assert not (await orch.verify_audit(run.run_id)).ok


async def test_entries_added_after_the_end_are_detected(make_orch: Any) -> None:
    """An entry chained correctly onto a finished run's trail is still reported."""
    orch = make_orch(_registry())
    run = await orch.execute_workflow(_workflow(fail=True))
    orch.audit.ledger.append(run.run_id, event="run_finished", data={"status": "completed"})
    orch.audit.ledger.commit()
    result = await orch.verify_audit(run.run_id)
    assert not result.ok
    assert "after the run finished" in result.reason


def test_cli_verify_exits_1_after_tail_removal(tmp_path: Path) -> None:
    """`orchestrator audit RUN --verify` exits 0, then 1 once a failed run's last entry is gone."""
    (tmp_path / "tail_actions.py").write_text(
        "from orchestrator import ActionRegistry\n\nregistry = ActionRegistry()\n\n\n"
        "@registry.action('boom')\ndef boom():\n    raise RuntimeError('no')\n"
    )
    (tmp_path / "tail.yaml").write_text(
        "name: tail\nactions: tail_actions\nsteps:\n  - {step_id: b, action: boom}\n"
    )
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, "--db", db],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert cli("run", "tail.yaml", "--run-id", "T1").returncode == 1
    assert cli("audit", "T1", "--verify").returncode == 0
    _drop_last_entry(db, "T1")
    broken = cli("audit", "T1", "--verify")
    assert broken.returncode == 1
    assert "removed" in broken.stdout
