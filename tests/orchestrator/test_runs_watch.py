"""Watching runs: `orchestrator runs` lists the database's runs; `status --watch` follows one.

Runs are made by the real CLI in subprocesses against a real SQLite file. `runs` is run as a
subprocess once, and otherwise parsed by the real parser and run in this process; `watch_run`
is exercised directly and through `status RUN_ID --watch` once that flag is wired.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import CliWorkspace

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from orchestrator._cli import build_parser, exit_code
from orchestrator._watch import refreshed_runs, watch_run
from state import AdvancedWorkflow, InvalidInputError, RunNotFoundError, WorkflowStatus

ACTIONS = '''
import asyncio
from pathlib import Path

from orchestrator import ActionRegistry

registry = ActionRegistry()


@registry.action("ok")
async def ok() -> dict:
    return {"ok": True}


@registry.action("boom")
async def boom() -> None:
    raise RuntimeError("payment gateway refused")


@registry.action("gate")
async def gate(workdir: str) -> dict:
    """Say it started, then wait until the test creates `go`."""
    root = Path(workdir)
    (root / "gate.started").write_text("", encoding="utf-8")
    for _ in range(600):
        if (root / "go").exists():
            return {"opened": True}
        await asyncio.sleep(0.05)
    raise TimeoutError("the test never opened the gate")
'''

WORKFLOWS = {
    "happy.yaml": """
name: Happy
workflow_id: happy
actions: watch_actions
steps:
  - {step_id: a, action: ok}
  - {step_id: b, action: ok, dependencies: [a]}
""",
    "failing.yaml": """
name: Failing
workflow_id: failing
actions: watch_actions
retry_policy: {max_attempts: 1}
steps:
  - {step_id: prepare, action: ok}
  - {step_id: charge, action: boom, dependencies: [prepare]}
  - {step_id: ship, action: ok, dependencies: [charge]}
""",
    "gated.yaml": """
name: Gated
workflow_id: gated
actions: watch_actions
steps:
  - {step_id: a, action: ok}
  - {step_id: wait, action: gate, dependencies: [a], input_mapping: {workdir: input.workdir}}
  - {step_id: c, action: ok, dependencies: [wait]}
""",
}


def _workspace(root: Path) -> CliWorkspace:
    (root / "watch_actions.py").write_text(ACTIONS, encoding="utf-8")
    for name, text in WORKFLOWS.items():
        (root / name).write_text(text, encoding="utf-8")
    return CliWorkspace(root)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> CliWorkspace:
    """A database holding two CLI runs: OK1 (completed) and F1 (failed)."""
    ws = _workspace(tmp_path_factory.mktemp("runs"))
    assert ws.cli("run", "happy.yaml", "--run-id", "OK1").returncode == 0
    assert ws.cli("run", "failing.yaml", "--run-id", "F1").returncode == 1
    return ws


def _command(ws: CliWorkspace, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Parse `orchestrator ARGV` with the real parser and run the command in this process."""
    args = build_parser().parse_args([*argv, "--db", ws.db])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_runs_lists_every_run_with_its_status(ran: CliWorkspace) -> None:
    """`runs --json` lists both runs with workflow, status, times, duration and current steps."""
    out = ran.cli("runs", "--json")
    assert out.returncode == 0, out.stderr
    runs = {run["run_id"]: run for run in json.loads(out.stdout)["runs"]}
    assert set(runs) == {"OK1", "F1"}
    assert (runs["OK1"]["workflow_id"], runs["OK1"]["status"]) == ("happy", "completed")
    assert (runs["F1"]["workflow_id"], runs["F1"]["status"]) == ("failing", "failed")
    assert runs["OK1"]["current_steps"] == []
    assert runs["OK1"]["started_at"] <= runs["OK1"]["finished_at"]
    assert runs["OK1"]["duration_seconds"] >= 0


def test_runs_filters_by_status(ran: CliWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs --status failed` lists only the failed run."""
    out = _command(ran, capsys, "runs", "--json", "--status", "failed")
    assert [run["run_id"] for run in json.loads(out)["runs"]] == ["F1"]


def test_runs_filters_by_workflow(ran: CliWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs --workflow happy` lists only that workflow's run."""
    out = _command(ran, capsys, "runs", "--json", "--workflow", "happy")
    assert [run["run_id"] for run in json.loads(out)["runs"]] == ["OK1"]


def test_runs_prints_a_table(ran: CliWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json, `runs` prints a header and one aligned row per run."""
    header, *rows = _command(ran, capsys, "runs").splitlines()
    assert re.split(r"\s{2,}", header.strip()) == [
        "RUN ID",
        "WORKFLOW",
        "STATUS",
        "STARTED (UTC)",
        "DURATION",
        "HELD BY",
        "CURRENT STEPS",
    ]
    assert sorted(row.split()[:3] for row in rows) == [
        ["F1", "failing", "failed"],
        ["OK1", "happy", "completed"],
    ]
    assert header.index("STATUS") == rows[0].index(rows[0].split()[2])


def test_runs_rejects_an_unknown_status(ran: CliWorkspace) -> None:
    """`runs --status finished` is a usage error naming the statuses that exist."""
    args = build_parser().parse_args(["runs", "--status", "finished", "--db", ran.db])
    with pytest.raises(InvalidInputError, match=r"unknown --status 'finished'; use one of .*"):
        args.func(args)


async def _watch(ws: CliWorkspace, run_id: str, **kwargs: Any) -> tuple[Any, str]:
    out = io.StringIO()
    orch = EnterpriseWorkflowOrchestrator(checkpointer=ws.db)
    try:
        run = await watch_run(orch, run_id, out=out, interval=0.01, **kwargs)
    finally:
        await orch.aclose()
    return run, out.getvalue()


async def test_watch_of_a_finished_run_prints_its_final_progress(ran: CliWorkspace) -> None:
    """Watching a completed run prints its progress once and returns it (exit code 0)."""
    run, text = await _watch(ran, "OK1")
    assert text == "run OK1 (happy): completed, 2/2 steps done\n"
    assert exit_code(run) == 0


async def test_watch_of_a_failed_run_returns_the_failure(ran: CliWorkspace) -> None:
    """Watching a failed run shows the steps that finished and returns it (exit code 1)."""
    run, text = await _watch(ran, "F1")
    assert text == "run F1 (failing): failed, 2/3 steps done\n"
    assert run.status is WorkflowStatus.FAILED
    assert exit_code(run) == 1


async def test_watch_stops_when_the_run_waits_for_approval(tmp_path: Path) -> None:
    """A run waiting for an approval ends the watch at once with exit code 3."""
    ws = _workspace(tmp_path)
    registry = ActionRegistry()
    registry.action("ok")(_ok)
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "approval",
            "steps": [
                {"step_id": "a", "action": "ok"},
                {
                    "step_id": "sign_off",
                    "step_type": "human_approval",
                    "dependencies": ["a"],
                    "approval": {"approvers": ["dana"]},
                },
            ],
        }
    )
    async with EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=ws.db) as orch:
        await orch.execute_workflow(workflow, {}, run_id="W1")
    run, text = await _watch(ws, "W1")
    assert text == "run W1 (approval): waiting_approval, 1/2 steps done\n"
    assert exit_code(run) == 3


async def _ok() -> dict[str, bool]:
    return {"ok": True}


@asynccontextmanager
async def gated_run(ws: CliWorkspace) -> AsyncIterator[subprocess.Popen[str]]:
    """`orchestrator run gated.yaml` as run LIVE, held inside step `wait` until `go` exists.

    On exit the gate is opened and the process waited for.
    """
    data = json.dumps({"workdir": str(ws.root)})
    runner = subprocess.Popen(
        ws.command("run", "gated.yaml", "--run-id", "LIVE", "--input", data),
        cwd=ws.root,
        env=ws.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            if (ws.root / "gate.started").exists() or runner.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert runner.poll() is None, runner.stderr.read() if runner.stderr else ""
        yield runner
    finally:
        (ws.root / "go").touch()
        runner.wait(timeout=60)


async def test_watch_follows_a_run_another_process_executes(tmp_path: Path) -> None:
    """Progress lines appear as checkpoints land, from 1/3 with the current step to 3/3."""
    ws = _workspace(tmp_path)

    async def open_gate_then_wait(seconds: float) -> None:
        (tmp_path / "go").touch()
        await asyncio.sleep(seconds)

    async with gated_run(ws) as runner:
        run, text = await _watch(ws, "LIVE", sleep=open_gate_then_wait)
    lines = text.splitlines()
    assert lines[0] == "run LIVE (gated): running, 1/3 steps done; current: wait"
    assert lines[-1] == "run LIVE (gated): completed, 3/3 steps done"
    assert run.status is WorkflowStatus.COMPLETED
    assert runner.returncode == 0


async def test_run_list_names_the_step_a_running_run_executes(tmp_path: Path) -> None:
    """While another process runs step `wait`, the run list shows LIVE running in `wait`."""
    ws = _workspace(tmp_path)
    async with gated_run(ws):
        rows = await refreshed_runs(EnterpriseWorkflowOrchestrator(checkpointer=ws.db))
    assert [(r["run_id"], r["status"], r["current_steps"]) for r in rows] == [
        ("LIVE", "running", ["wait"])
    ]


async def test_watch_on_a_terminal_redraws_one_line_with_a_bar(ran: CliWorkspace) -> None:
    """With a TTY the progress is a bar redrawn in place, then a newline."""
    _, text = await _watch(ran, "OK1", tty=True)
    assert text == "\r[########################] run OK1 (happy): completed, 2/2 steps done\033[K\n"


async def test_watch_of_an_unknown_run_raises(ran: CliWorkspace) -> None:
    """Watching a run id the database lacks raises RunNotFoundError naming it."""
    with pytest.raises(RunNotFoundError, match="no run 'NOPE'"):
        await _watch(ran, "NOPE")


def test_status_watch_exits_with_the_runs_exit_code(ran: CliWorkspace) -> None:
    """`status F1 --watch` prints the progress and the failure, and exits 1."""
    out = ran.cli("status", "F1", "--watch")
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith("run F1 (failing): failed, 2/3 steps done\n")
