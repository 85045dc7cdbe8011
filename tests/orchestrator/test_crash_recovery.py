"""Crash recovery through the CLI: a run killed with SIGKILL resumes in a new process.

Finished steps do not run again; the step that was in flight runs again (at-least-once) with
the same idempotency key. Each scenario kills one real `orchestrator run` subprocess once
(module-scoped) and its tests read what the status, the resume and the side-effect log show.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import MSGPACK_WARNINGS, Cli

from orchestrator import EnterpriseWorkflowOrchestrator
from state import RunNotFoundError

FIXTURES = Path(__file__).parent / "fixtures"
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class Crash:
    """What a killed-then-resumed run left behind."""

    killed_stderr: str
    status: Cli
    resume: Cli
    effects: list[tuple[str, str]]

    def runs_of(self, step_id: str) -> list[str]:
        """The idempotency keys of every execution of `step_id`, in order."""
        return [key for step, key in self.effects if step == step_id]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
    env["LANGGRAPH_STRICT_MSGPACK"] = "true"
    return env


def _cli(cwd: Path, *args: str) -> Cli:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Cli(proc.returncode, proc.stdout, proc.stderr)


def _completed_steps(db_url: str, run_id: str) -> list[str]:
    """What the checkpoint records as done, read through the public API."""

    async def read() -> list[str]:
        orch = EnterpriseWorkflowOrchestrator(checkpointer=db_url)
        try:
            return (await orch.status(run_id)).completed_steps
        except RunNotFoundError:
            return []
        finally:
            await orch.aclose()

    return asyncio.run(read())


def _crash_and_resume(
    root: Path,
    workflow: str,
    run_id: str,
    marker: str,
    recorded_first: str | None = None,
    **run_input: Any,
) -> Crash:
    """Run `workflow`, SIGKILL it once `marker` exists (and `recorded_first` is checkpointed),
    then read its status and resume it in new processes with the slow step made fast."""
    for source in FIXTURES.iterdir():
        if source.is_file():
            shutil.copy(source, root / source.name)
    work = root / "work"
    work.mkdir()
    db = f"sqlite:///{root / 'runs.sqlite'}"
    args = ["run", workflow, "--input", json.dumps({"workdir": str(work), **run_input})]
    with (root / "killed.err").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args, "--db", db, "--run-id", run_id],
            cwd=root,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not (work / marker).exists() or (
                recorded_first and recorded_first not in _completed_steps(db, run_id)
            ):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{marker} never appeared:\n{(root / 'killed.err').read_text()}")
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    status = _cli(root, "status", run_id, "--db", db, "--json")
    (work / "fast").touch()
    resume = _cli(root, "resume", run_id, "--db", db, "--json")
    lines = (work / "effects.log").read_text(encoding="utf-8").splitlines()
    return Crash(
        killed_stderr=(root / "killed.err").read_text(),
        status=status,
        resume=resume,
        effects=[(line.split(" ")[0], line.split(" ")[1]) for line in lines],
    )


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> Crash:
    """a -> b -> slow -> d, killed while `slow` runs."""
    root = tmp_path_factory.mktemp("sequential")
    return _crash_and_resume(root, "sequential.yaml", "R1", "slow.started")


@pytest.fixture(scope="module")
def busy_db(tmp_path_factory: pytest.TempPathFactory) -> Crash:
    """Like `sequential`, but `a` keeps the run database write-locked for a second."""
    root = tmp_path_factory.mktemp("busy_db")
    db_path = str(root / "runs.sqlite")
    return _crash_and_resume(
        root, "busy_db.yaml", "R4", "slow.started", db_path=db_path, lock_seconds=1.0
    )


@pytest.fixture(scope="module")
def fanout(tmp_path_factory: pytest.TempPathFactory) -> Crash:
    """Independent top-level steps p1 (fast) and p2 (slow), killed after p1 is checkpointed."""
    root = tmp_path_factory.mktemp("fanout")
    return _crash_and_resume(root, "fanout.yaml", "R2", "p2.started", recorded_first="p1")


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory) -> Crash:
    """p1 -> p1b beside a slow p2 in one DAG task, killed after p1b finished (mid-superstep)."""
    root = tmp_path_factory.mktemp("dag")
    return _crash_and_resume(root, "dag.yaml", "R5", "p2.started", recorded_first="p1b")


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Crash:
    """A parallel container with children c1 (fast) and c2 (slow), killed while c2 runs."""
    root = tmp_path_factory.mktemp("container")
    return _crash_and_resume(root, "container.yaml", "R3", "c2.started")


def test_killed_run_reports_running_with_exit_3(sequential: Crash) -> None:
    """`status` of a killed run says running (resumable) and exits 3."""
    assert sequential.status.code == 3, sequential.status.stderr
    assert sequential.status.json()["status"] == "running"


def test_killed_run_keeps_the_steps_that_finished(sequential: Crash) -> None:
    """`status` of a killed run lists the steps that finished before the kill."""
    assert sequential.status.json()["completed_steps"] == ["a", "b"]


def test_resume_in_a_new_process_completes_the_run(sequential: Crash) -> None:
    """`resume` in a new process finishes a killed run: exit 0, status completed."""
    assert sequential.resume.code == 0, sequential.resume.stderr
    run = sequential.resume.json()
    assert run["status"] == "completed"
    assert run["completed_steps"] == ["a", "b", "slow", "d"]
    assert run["error"] is None


def test_finished_steps_do_not_run_again_after_resume(sequential: Crash) -> None:
    """Steps that finished before the kill, and steps after it, each run exactly once."""
    counts = Counter(step for step, _ in sequential.effects)
    assert (counts["a"], counts["b"], counts["d"]) == (1, 1, 1)


def test_in_flight_step_reruns_with_the_same_idempotency_key(sequential: Crash) -> None:
    """The step in flight at the kill runs again, with the idempotency key of its first run."""
    keys = sequential.runs_of("slow")
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_idempotency_keys_differ_between_steps(sequential: Crash) -> None:
    """Each step of a run has its own idempotency key."""
    keys = dict(sequential.effects)
    assert len(set(keys.values())) == len(keys) == 4


def test_checkpoints_deserialize_without_msgpack_warnings(sequential: Crash) -> None:
    """Reading and resuming the crashed run's checkpoints logs no msgpack allowlist warning."""
    for stderr in (sequential.killed_stderr, sequential.status.stderr, sequential.resume.stderr):
        assert not [w for w in MSGPACK_WARNINGS if w in stderr], stderr


def test_finished_steps_survive_a_kill_while_the_database_is_busy(busy_db: Crash) -> None:
    """Steps that finished before a kill do not re-run even when checkpoint writes were slow."""
    counts = Counter(step for step, _ in busy_db.effects)
    assert (counts["a"], counts["b"]) == (1, 1), (busy_db.status.stdout, busy_db.effects)


def test_finished_independent_step_does_not_rerun(fanout: Crash) -> None:
    """A top-level step that finished beside a step killed in flight does not run again."""
    assert fanout.status.json()["completed_steps"] == ["p1"]
    assert len(fanout.runs_of("p1")) == 1


def test_killed_independent_step_reruns_with_the_same_key(fanout: Crash) -> None:
    """The independent step killed in flight runs again with the same idempotency key."""
    keys = fanout.runs_of("p2")
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_fanout_run_completes_after_resume(fanout: Crash) -> None:
    """After the resume the join runs once and the run completes."""
    assert fanout.resume.code == 0, fanout.resume.stderr
    assert fanout.resume.json()["status"] == "completed"
    assert len(fanout.runs_of("join")) == 1


def test_container_children_rerun_with_the_same_keys(container: Crash) -> None:
    """A parallel container is one task: after a kill all its children run again, same keys."""
    for child in ("c1", "c2"):
        keys = container.runs_of(child)
        assert len(keys) == 2, container.effects
        assert keys[0] == keys[1]


def test_container_run_completes_after_resume(container: Crash) -> None:
    """A run killed inside a parallel container completes on resume; the join runs once."""
    assert container.resume.code == 0, container.resume.stderr
    assert container.resume.json()["completed_steps"] == ["fan", "c1", "c2", "join"]
    assert len(container.runs_of("join")) == 1


def test_status_shows_steps_a_dag_task_finished_before_the_kill(dag: Crash) -> None:
    """`status` after the kill reports the steps the DAG task finished mid-superstep."""
    assert dag.status.json()["completed_steps"] == ["p1", "p1b"], dag.status.stdout


def test_steps_finished_in_a_dag_task_do_not_rerun(dag: Crash) -> None:
    """A step and its dependent that finished inside a killed DAG task do not run again."""
    assert (len(dag.runs_of("p1")), len(dag.runs_of("p1b"))) == (1, 1), dag.effects


def test_step_killed_in_a_dag_task_reruns_with_the_same_key(dag: Crash) -> None:
    """The step in flight when the DAG task was killed runs again with the same key."""
    keys = dag.runs_of("p2")
    assert len(keys) == 2, dag.effects
    assert keys[0] == keys[1]


def test_dag_run_completes_after_resume(dag: Crash) -> None:
    """After the resume the join runs once and the run completes with every step."""
    assert dag.resume.code == 0, dag.resume.stderr
    body = dag.resume.json()
    assert body["status"] == "completed"
    assert sorted(body["completed_steps"]) == ["join", "p1", "p1b", "p2"]
    assert len(dag.runs_of("join")) == 1
