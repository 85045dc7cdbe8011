"""The `orchestrator` command line as users run it: exit codes, `--json`, error messages.

Every test runs the CLI as a real subprocess from a directory holding copies of the workflows
and actions module in `fixtures/`, against a real SQLite file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MSGPACK_WARNINGS, Cli

FIXTURES = Path(__file__).parent / "fixtures"
CONTRACT_KEYS = {
    "run_id",
    "workflow_id",
    "status",
    "result",
    "completed_steps",
    "failed_steps",
    "skipped_steps",
    "pending_approval",
    "error",
}


@dataclass(frozen=True)
class Workspace:
    """A directory to run the CLI from: the fixtures, a work dir for side effects, a db."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def db(self) -> str:
        return f"sqlite:///{self.root / 'runs.sqlite'}"

    @property
    def input(self) -> str:
        return json.dumps({"workdir": str(self.work)})

    def effects(self) -> list[str]:
        """Steps that ran, one per execution, in order."""
        log = self.work / "effects.log"
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        return [line.split(" ")[0] for line in lines]

    def cli(self, *args: str) -> Cli:
        """Run `orchestrator ARGS` here; fails the test on any msgpack warning."""
        env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
        env["LANGGRAPH_STRICT_MSGPACK"] = "true"
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not [w for w in MSGPACK_WARNINGS if w in proc.stderr], proc.stderr
        return Cli(proc.returncode, proc.stdout, proc.stderr)


def _workspace(root: Path) -> Workspace:
    for source in FIXTURES.iterdir():
        if source.is_file():
            shutil.copy(source, root / source.name)
    (root / "work").mkdir()
    return Workspace(root)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh workspace for one test."""
    return _workspace(tmp_path)


@pytest.fixture(scope="module")
def completed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Cli]:
    """A completed run of `happy.yaml`, on the default database (no --db, no $ORCHESTRATOR_DB)."""
    ws = _workspace(tmp_path_factory.mktemp("completed"))
    return ws, ws.cli("run", "happy.yaml", "--input", ws.input, "--run-id", "OK1", "--json")


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Cli]:
    """A run of `failing.yaml`, whose `charge` step raises."""
    ws = _workspace(tmp_path_factory.mktemp("failed"))
    run = ws.cli(
        "run", "failing.yaml", "--input", ws.input, "--db", ws.db, "--run-id", "F1", "--json"
    )
    return ws, run


def test_completed_run_exits_0(completed: tuple[Workspace, Cli]) -> None:
    """`run` of a workflow that completes exits 0."""
    _, run = completed
    assert run.code == 0, run.stderr


def test_json_output_has_exactly_the_contract_keys(completed: tuple[Workspace, Cli]) -> None:
    """`run --json` prints one JSON object with the keys of the contract."""
    _, run = completed
    assert set(run.json()) == CONTRACT_KEYS


def test_completed_run_json_carries_status_steps_and_result(
    completed: tuple[Workspace, Cli],
) -> None:
    """`run --json` of a completed run shows its id, status, steps and final context."""
    ws, run = completed
    out = run.json()
    assert (out["run_id"], out["workflow_id"], out["status"]) == ("OK1", "happy", "completed")
    assert out["completed_steps"] == ["greet", "finish"]
    assert (out["failed_steps"], out["skipped_steps"]) == ([], [])
    assert out["result"] == {"workdir": str(ws.work), "greeted": "greet"}
    assert (out["pending_approval"], out["error"]) == (None, None)


def test_default_db_is_under_the_current_directory(completed: tuple[Workspace, Cli]) -> None:
    """Without --db or $ORCHESTRATOR_DB, runs go to `.orchestrator/runs.sqlite` in the cwd."""
    ws, _ = completed
    assert (ws.root / ".orchestrator" / "runs.sqlite").is_file()


def test_resume_of_a_completed_run_exits_2(completed: tuple[Workspace, Cli]) -> None:
    """`resume` of a completed run exits 2 and says it cannot be resumed."""
    ws, _ = completed
    resume = ws.cli("resume", "OK1")
    assert resume.code == 2
    assert "run 'OK1' is completed" in resume.stderr
    assert "cannot be resumed" in resume.stderr


def test_failed_run_exits_1(failed: tuple[Workspace, Cli]) -> None:
    """`run` of a workflow whose action raises exits 1."""
    _, run = failed
    assert run.code == 1, run.stderr


def test_failed_run_json_names_the_step_and_error(failed: tuple[Workspace, Cli]) -> None:
    """A failed run's `--json` error names the step, the exception type and its message."""
    _, run = failed
    out = run.json()
    assert out["status"] == "failed"
    assert (out["completed_steps"], out["failed_steps"]) == (["prepare"], ["charge"])
    assert out["error"]["step_id"] == "charge"
    assert out["error"]["error_type"] == "RuntimeError"
    assert "payment gateway refused charge" in out["error"]["message"]


def test_failed_run_stops_before_later_steps(failed: tuple[Workspace, Cli]) -> None:
    """Steps after the failed one do not run."""
    ws, _ = failed
    assert ws.effects() == ["prepare", "charge"]


def test_status_of_a_failed_run_exits_1(failed: tuple[Workspace, Cli]) -> None:
    """`status --json` of a failed run, from a new process, shows the failure and exits 1."""
    ws, _ = failed
    status = ws.cli("status", "F1", "--db", ws.db, "--json")
    assert status.code == 1, status.stderr
    out = status.json()
    assert (out["run_id"], out["status"]) == ("F1", "failed")
    assert out["error"]["step_id"] == "charge"


def test_run_waiting_for_approval_exits_3(ws: Workspace) -> None:
    """`run` that reaches a human approval exits 3 with the pending request in `--json`."""
    run = ws.cli("run", "approval.yaml", "--input", ws.input, "--db", ws.db, "--json")
    assert run.code == 3, run.stderr
    out = run.json()
    assert out["status"] == "waiting_approval"
    assert out["pending_approval"]["step_id"] == "sign_off"
    assert out["pending_approval"]["approvers"] == ["dana"]


def test_run_of_invalid_definition_names_every_problem(ws: Workspace) -> None:
    """`run` of an invalid definition exits 2 and names every problem on stderr at once."""
    run = ws.cli("run", "invalid.yaml", "--input", ws.input, "--db", ws.db)
    assert run.code == 2
    assert "depends on unknown step 'autorize' (did you mean 'authorize'?)" in run.stderr
    assert "a -> b -> a" in run.stderr
    assert "context.total >= >= 5" in run.stderr
    assert ws.effects() == []


def test_validate_of_invalid_definition_exits_2(ws: Workspace) -> None:
    """`validate` of an invalid definition exits 2 naming every problem."""
    check = ws.cli("validate", "invalid.yaml")
    assert check.code == 2
    for problem in ("'autorize'", "a -> b -> a", "context.total >= >= 5"):
        assert problem in check.stderr


def test_validate_of_valid_definition_exits_0(ws: Workspace) -> None:
    """`validate` of a valid definition exits 0."""
    check = ws.cli("validate", "happy.yaml")
    assert check.code == 0, check.stderr


def test_input_that_is_not_an_object_exits_2(ws: Workspace) -> None:
    """`--input` that is JSON but not an object exits 2 without running anything."""
    run = ws.cli("run", "happy.yaml", "--input", "[1, 2]", "--db", ws.db)
    assert run.code == 2
    assert "must be a JSON object" in run.stderr


def test_input_that_is_not_json_exits_2(ws: Workspace) -> None:
    """`--input` that is not valid JSON exits 2 without running anything."""
    run = ws.cli("run", "happy.yaml", "--input", "{workdir: nope", "--db", ws.db)
    assert run.code == 2
    assert "not valid JSON" in run.stderr


def test_unknown_action_exits_2_naming_it(ws: Workspace) -> None:
    """A definition naming an unregistered action exits 2, names it and runs no step."""
    run = ws.cli("run", "unknown_action.yaml", "--input", ws.input, "--db", ws.db)
    assert run.code == 2
    assert "refund_everything" in run.stderr
    assert ws.effects() == []


def test_status_of_unknown_run_exits_2(ws: Workspace) -> None:
    """`status` of a run id the database does not know exits 2 and names the id."""
    status = ws.cli("status", "no-such-run", "--db", ws.db)
    assert status.code == 2
    assert "no run 'no-such-run'" in status.stderr


def test_unwritable_db_exits_2(ws: Workspace) -> None:
    """A checkpointer path that cannot be created exits 2 and names the path."""
    run = ws.cli("run", "happy.yaml", "--input", ws.input, "--db", "sqlite:////proc/nope/x.sqlite")
    assert run.code == 2
    assert "/proc/nope/x.sqlite" in run.stderr
    assert ws.effects() == []


def test_graph_prints_a_mermaid_flowchart(ws: Workspace) -> None:
    """`graph` prints a Mermaid flowchart naming the workflow's steps."""
    graph = ws.cli("graph", "happy.yaml")
    assert graph.code == 0, graph.stderr
    assert graph.stdout.startswith("flowchart")
    assert "greet" in graph.stdout
    assert "finish" in graph.stdout


def test_schema_prints_the_definition_json_schema(ws: Workspace) -> None:
    """`schema` prints a JSON Schema describing `steps`."""
    schema = ws.cli("schema")
    assert schema.code == 0, schema.stderr
    assert "steps" in json.loads(schema.stdout)["properties"]
