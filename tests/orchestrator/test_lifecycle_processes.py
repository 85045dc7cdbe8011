"""Lifecycle commands across real processes: pause, cancel, SIGKILL, approvals, sweep.

Each scenario runs `orchestrator run` as one subprocess and acts on the run from others
(`pause`, `cancel`, `status`, `resume`, `approve`, `reject`, `sweep`), all on one SQLite file.
The actions module and workflows below are written into the scenario's directory, which is
the cwd of every process; each action appends `<event> <step_id> <idempotency_key>` to the
log file named by the run input, the side effect the tests count. Every scenario runs once
(module-scoped) and its tests read what the processes and the log show.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import MSGPACK_WARNINGS, Cli

from orchestrator import EnterpriseWorkflowOrchestrator
from state import RunNotFoundError

ACTIONS = '''
"""Actions that leave `<event> <step_id> <idempotency_key>` lines in the run's log file."""

import asyncio
import time
from pathlib import Path

from orchestrator import ActionRegistry, StepContext

registry = ActionRegistry()


def _log(path, line):
    with Path(path).open("a", encoding="utf-8") as log:
        log.write(line + "\\n")


@registry.action("record")
async def record(log: str, ctx: StepContext) -> dict:
    """Log `do <step>` and return at once."""
    _log(log, f"do {ctx.step_id} {ctx.idempotency_key}")
    return {"step": ctx.step_id}


@registry.action("slow")
async def slow(log: str, seconds: float, ctx: StepContext) -> dict:
    """Log `start`, write `<step>.started`, wait `seconds` (or until `fast` exists), log `do`."""
    folder = Path(log).parent
    _log(log, f"start {ctx.step_id} {ctx.idempotency_key}")
    (folder / f"{ctx.step_id}.started").write_text(ctx.idempotency_key, encoding="utf-8")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (folder / "fast").exists():
        await asyncio.sleep(0.05)
    _log(log, f"do {ctx.step_id} {ctx.idempotency_key}")
    return {"step": ctx.step_id}


@registry.action("fail")
async def fail(log: str, ctx: StepContext) -> dict:
    """Log `do <step>`, then raise."""
    _log(log, f"do {ctx.step_id} {ctx.idempotency_key}")
    raise RuntimeError(f"{ctx.step_id} was refused")


@registry.action("undo")
async def undo(step_id: str, context: dict, ctx: StepContext) -> None:
    """Compensate `step_id`, logging `undo <step>` when done.

    For the step named by the input's `hang_undo`, the first call writes
    `undo-<step>.started` (holding its idempotency key) and hangs for 30 s.
    """
    folder = Path(context["log"]).parent
    hung = folder / f"undo-{step_id}.hung"
    if context.get("hang_undo") == step_id and not hung.exists():
        hung.touch()
        started = folder / f"undo-{step_id}.started"
        started.write_text(ctx.idempotency_key, encoding="utf-8")
        await asyncio.sleep(30)
    _log(context["log"], f"undo {step_id} {ctx.idempotency_key}")
'''

WORKFLOWS = {
    "chain.yaml": """
name: Chain
workflow_id: chain
actions: lifecycle_actions
retry_policy: {max_attempts: 1}
steps:
  - {step_id: a, action: record, input_mapping: {log: input.log}, rollback_actions: [undo]}
  - step_id: slow
    action: slow
    dependencies: [a]
    input_mapping: {log: input.log, seconds: input.seconds}
    rollback_actions: [undo]
  - {step_id: c, action: record, dependencies: [slow], input_mapping: {log: input.log}}
""",
    "fork.yaml": """
name: Fork
workflow_id: fork
actions: lifecycle_actions
retry_policy: {max_attempts: 1}
steps:
  - {step_id: prep, action: record, input_mapping: {log: input.log}}
  - step_id: slow
    action: slow
    dependencies: [prep]
    input_mapping: {log: input.log, seconds: input.seconds}
  - {step_id: gate, step_type: human_approval, dependencies: [prep], approval: {approvers: [dana]}}
  - {step_id: ship, action: record, dependencies: [slow, gate], input_mapping: {log: input.log}}
""",
    "saga.yaml": """
name: Saga
workflow_id: saga
actions: lifecycle_actions
retry_policy: {max_attempts: 1}
steps:
  - {step_id: s1, action: record, input_mapping: {log: input.log}, rollback_actions: [undo]}
  - step_id: s2
    action: record
    dependencies: [s1]
    input_mapping: {log: input.log}
    rollback_actions: [undo]
  - step_id: s3
    action: record
    dependencies: [s2]
    input_mapping: {log: input.log}
    rollback_actions: [undo]
  - {step_id: boom, action: fail, dependencies: [s3], input_mapping: {log: input.log}}
""",
    "gate.yaml": """
name: Gate
workflow_id: gate
actions: lifecycle_actions
retry_policy: {max_attempts: 1}
steps:
  - {step_id: prep, action: record, input_mapping: {log: input.log}, rollback_actions: [undo]}
  - step_id: sign_off
    step_type: human_approval
    dependencies: [prep]
    approval: {approvers: [dana, erin]}
  - {step_id: ship, action: record, dependencies: [sign_off], input_mapping: {log: input.log}}
""",
    "deadline.yaml": """
name: Deadline
workflow_id: deadline
actions: lifecycle_actions
steps:
  - {step_id: prep, action: record, input_mapping: {log: input.log}}
  - step_id: sign_off
    step_type: human_approval
    dependencies: [prep]
    approval: {approvers: [dana], timeout_seconds: 1, on_timeout: reject}
  - {step_id: ship, action: record, dependencies: [sign_off], input_mapping: {log: input.log}}
""",
}

WAIT = 20.0
"""Longest wait for any process or marker; far above what a healthy run needs."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
    env["LANGGRAPH_STRICT_MSGPACK"] = "true"
    return env


@dataclass(frozen=True)
class Workspace:
    """A scenario's directory: actions module, workflows, run database and side-effect log."""

    root: Path

    @property
    def db(self) -> str:
        return f"sqlite:///{self.root / 'runs.sqlite'}"

    @property
    def log(self) -> Path:
        return self.root / "effects.log"

    def input(self, **extra: Any) -> str:
        return json.dumps({"log": str(self.log), **extra})

    def effects(self) -> list[tuple[str, str]]:
        """`(event, step_id)` of every logged side effect, in order."""
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        return [(line.split(" ")[0], line.split(" ")[1]) for line in lines]

    def keys(self, event: str, step_id: str) -> list[str]:
        """Idempotency keys logged for `event` of `step_id`, in order."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [line.split(" ")[2] for line in lines if line.split(" ")[:2] == [event, step_id]]

    def cli(self, *args: str) -> Cli:
        """Run `orchestrator ARGS --db DB --json` here and wait (bounded) for it."""
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, "--db", self.db, "--json"],
            cwd=self.root,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Cli(proc.returncode, proc.stdout, proc.stderr)

    def start(self, name: str, *args: str) -> Background:
        """Start `orchestrator ARGS --db DB --json` here in the background."""
        err = self.root / f"{name}.err"
        with err.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", *args, "--db", self.db, "--json"],
                cwd=self.root,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        return Background(proc, err)


@dataclass(frozen=True)
class Background:
    """An `orchestrator` process running in the background."""

    proc: subprocess.Popen[str]
    err: Path

    def finish(self) -> Cli:
        """Wait (bounded) for the process to exit on its own."""
        try:
            stdout, _ = self.proc.communicate(timeout=WAIT)
        finally:
            self.proc.kill()
        return Cli(self.proc.returncode, stdout, self.err.read_text())

    def kill(self) -> Cli:
        """SIGKILL the process."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        return Cli(self.proc.returncode, "", self.err.read_text())

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        """Poll until `ready()`; fail (killing the process) if it exits or WAIT passes first."""
        deadline = time.monotonic() + WAIT
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(timeout=10)
                pytest.fail(f"{what} never happened:\n{self.err.read_text()}")
            time.sleep(0.02)


def _workspace(root: Path) -> Workspace:
    (root / "lifecycle_actions.py").write_text(ACTIONS, encoding="utf-8")
    for name, text in WORKFLOWS.items():
        (root / name).write_text(text, encoding="utf-8")
    return Workspace(root)


def _pending_approval(db: str, run_id: str) -> dict[str, Any] | None:
    """The approval request the run's checkpoint shows (None if none, or no run yet)."""

    async def read() -> dict[str, Any] | None:
        async with EnterpriseWorkflowOrchestrator(checkpointer=db) as orch:
            try:
                return (await orch.status(run_id)).pending_approval
            except RunNotFoundError:
                return None

    return asyncio.run(read())


def _requested(db: str, run_id: str) -> str | None:
    """The lifecycle request (pause, cancel) waiting in the run index for the run."""

    async def read() -> str | None:
        async with EnterpriseWorkflowOrchestrator(checkpointer=db) as orch:
            return orch.index.pending_request(run_id)

    return asyncio.run(read())


# -- pause and cancel from a second process ---------------------------------------------------


@dataclass(frozen=True)
class Stopped:
    """A run of chain.yaml (a -> slow -> c) stopped from a second process while `slow` ran."""

    ws: Workspace
    request: Cli
    run: Cli
    effects: list[tuple[str, str]]


def _stop_during_slow(root: Path, run_id: str, *request: str) -> Stopped:
    """`slow` holds until `fast` exists, which the test creates only once the second
    process's request has reached the run index: the request always lands mid-step."""
    ws = _workspace(root)
    run = ws.start(
        "run", "run", "chain.yaml", "--input", ws.input(seconds=WAIT), "--run-id", run_id
    )
    run.wait_for("slow's start", (root / "slow.started").exists)
    requester = ws.start("request", *request, run_id)
    requester.wait_for(f"the {request[0]} request", lambda: _requested(ws.db, run_id) is not None)
    (root / "fast").touch()
    answer = requester.finish()
    return Stopped(ws, answer, run.finish(), ws.effects())


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stopped]:
    """The pause, cancel and cancel --compensate scenarios, run side by side to save time
    (each has its own directory and database)."""
    requests = {
        "paused": ("P1", "pause"),
        "cancelled": ("X1", "cancel"),
        "compensated": ("X2", "cancel", "--compensate"),
    }
    with ThreadPoolExecutor() as pool:
        futures = {
            name: pool.submit(_stop_during_slow, tmp_path_factory.mktemp(name), *request)
            for name, request in requests.items()
        }
    return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def paused(stopped: dict[str, Stopped]) -> Stopped:
    """chain.yaml paused by `pause` from a second process while `slow` runs."""
    return stopped["paused"]


@pytest.fixture(scope="module")
def resumed(paused: Stopped) -> Cli:
    """The paused run, resumed by a third process."""
    return paused.ws.cli("resume", "P1")


def test_pause_from_another_process_stops_the_run_at_the_next_boundary(paused: Stopped) -> None:
    """The executing process finishes the in-flight step, then exits 3 with status paused."""
    assert paused.run.code == 3, paused.run.stderr
    assert paused.run.json()["status"] == "paused"
    assert paused.run.json()["completed_steps"] == ["a", "slow"]


def test_pause_command_reports_the_run_paused(paused: Stopped) -> None:
    """`pause` waits for the executing process to honour it and exits 3 with status paused."""
    assert paused.request.code == 3, paused.request.stderr
    assert paused.request.json()["status"] == "paused"


def test_paused_run_does_not_run_later_steps(paused: Stopped) -> None:
    """Pausing loses nothing in flight (slow finished) and starts nothing after it."""
    assert paused.effects == [("do", "a"), ("start", "slow"), ("do", "slow")]


def test_resume_completes_the_paused_run(paused: Stopped, resumed: Cli) -> None:
    """`resume` from a new process completes the paused run and exits 0."""
    assert resumed.code == 0, resumed.stderr
    assert resumed.json()["status"] == "completed"
    assert resumed.json()["completed_steps"] == ["a", "slow", "c"]


def test_resume_runs_each_remaining_step_once(paused: Stopped, resumed: Cli) -> None:
    """After pause and resume, every step has run exactly once."""
    assert paused.ws.effects() == [("do", "a"), ("start", "slow"), ("do", "slow"), ("do", "c")]


def test_resume_of_a_completed_run_exits_2_with_a_clear_message(
    paused: Stopped, resumed: Cli
) -> None:
    """`resume` of a run that already completed exits 2 and says why."""
    again = paused.ws.cli("resume", "P1")
    assert again.code == 2
    assert "run 'P1' is completed; a finished run cannot be resumed" in again.stderr


@pytest.fixture(scope="module")
def cancelled(stopped: dict[str, Stopped]) -> Stopped:
    """chain.yaml cancelled by `cancel` from a second process while `slow` runs."""
    return stopped["cancelled"]


@pytest.fixture(scope="module")
def compensated(stopped: dict[str, Stopped]) -> Stopped:
    """chain.yaml cancelled by `cancel --compensate` from a second process while `slow` runs."""
    return stopped["compensated"]


def test_cancel_from_another_process_ends_the_run_cancelled(cancelled: Stopped) -> None:
    """The executing process ends the run cancelled after the in-flight step and exits 1."""
    assert cancelled.run.code == 1, cancelled.run.stderr
    assert cancelled.run.json()["status"] == "cancelled"


def test_cancel_command_reports_the_run_cancelled(cancelled: Stopped) -> None:
    """`cancel` waits for the executing process to honour it and exits 1."""
    assert cancelled.request.code == 1, cancelled.request.stderr
    assert cancelled.request.json()["status"] == "cancelled"


def test_cancelled_run_runs_no_later_step_and_no_compensation(cancelled: Stopped) -> None:
    """After a plain cancel, later steps never run and nothing is compensated."""
    assert cancelled.effects == [("do", "a"), ("start", "slow"), ("do", "slow")]


def test_cancel_compensate_ends_the_run_cancelled(compensated: Stopped) -> None:
    """`cancel --compensate` from another process also ends the run cancelled (exit 1)."""
    assert compensated.run.code == 1, compensated.run.stderr
    assert compensated.run.json()["status"] == "cancelled"


def test_cancel_compensate_undoes_completed_steps_newest_first(compensated: Stopped) -> None:
    """`cancel --compensate` runs the compensations of completed steps, newest first."""
    assert compensated.effects[3:] == [("undo", "slow"), ("undo", "a")]
    assert ("do", "c") not in compensated.effects


# -- SIGKILL beside a pending approval --------------------------------------------------------


@dataclass(frozen=True)
class ForkCrash:
    """fork.yaml killed while `slow` runs beside `gate`, which waits for an approval."""

    ws: Workspace
    status: Cli
    resume: Cli
    approve: Cli


@pytest.fixture(scope="module")
def fork_crash(tmp_path_factory: pytest.TempPathFactory) -> ForkCrash:
    """Kill the run once slow started and gate's request is checkpointed; then recover it."""
    root = tmp_path_factory.mktemp("fork")
    ws = _workspace(root)
    run = ws.start("run", "run", "fork.yaml", "--input", ws.input(seconds=WAIT), "--run-id", "K1")
    run.wait_for(
        "slow's start beside a checkpointed approval request",
        lambda: (root / "slow.started").exists() and _pending_approval(ws.db, "K1") is not None,
    )
    run.kill()
    status = ws.cli("status", "K1")
    (root / "fast").touch()
    resume = ws.cli("resume", "K1")
    return ForkCrash(ws, status, resume, ws.cli("approve", "K1", "--as", "dana"))


def test_status_after_kill_beside_an_approval_shows_the_run_resumable(
    fork_crash: ForkCrash,
) -> None:
    """`status` of the killed run exits 3, not finished, with the step that finished kept."""
    assert fork_crash.status.code == 3, fork_crash.status.stderr
    assert fork_crash.status.json()["status"] in {"running", "waiting_approval"}
    assert fork_crash.status.json()["completed_steps"] == ["prep"]


def test_resume_finishes_the_killed_branch_and_waits_for_the_approval(
    fork_crash: ForkCrash,
) -> None:
    """`resume` re-runs the killed branch to completion, then the run waits (exit 3)."""
    assert fork_crash.resume.code == 3, fork_crash.resume.stderr
    assert fork_crash.resume.json()["status"] == "waiting_approval"
    assert fork_crash.resume.json()["completed_steps"] == ["prep", "slow"]


def test_approve_after_the_crash_completes_the_run(fork_crash: ForkCrash) -> None:
    """`approve --as` an allowed approver completes the recovered run (exit 0)."""
    assert fork_crash.approve.code == 0, fork_crash.approve.stderr
    assert fork_crash.approve.json()["status"] == "completed"


def test_only_the_in_flight_step_runs_twice(fork_crash: ForkCrash) -> None:
    """Every step finishes once; only the step killed in flight was started twice."""
    counts = Counter(fork_crash.ws.effects())
    assert counts == {("do", "prep"): 1, ("start", "slow"): 2, ("do", "slow"): 1, ("do", "ship"): 1}


def test_in_flight_step_restarts_with_the_same_idempotency_key(fork_crash: ForkCrash) -> None:
    """The killed step's second start carries the idempotency key of its first."""
    first, second = fork_crash.ws.keys("start", "slow")
    assert first == second


# -- SIGKILL while compensating ---------------------------------------------------------------


@dataclass(frozen=True)
class SagaCrash:
    """saga.yaml (s1 -> s2 -> s3 -> boom) killed while s2's compensation hangs."""

    ws: Workspace
    killed: Cli
    status: Cli
    resume: Cli


@pytest.fixture(scope="module")
def saga_crash(tmp_path_factory: pytest.TempPathFactory) -> SagaCrash:
    """Kill the run as soon as s2's undo has started; read its status and resume it."""
    root = tmp_path_factory.mktemp("saga")
    ws = _workspace(root)
    run = ws.start("run", "run", "saga.yaml", "--input", ws.input(hang_undo="s2"), "--run-id", "S1")
    run.wait_for("s2's undo start", (root / "undo-s2.started").exists)
    killed = run.kill()
    return SagaCrash(ws, killed, ws.cli("status", "S1"), ws.cli("resume", "S1"))


def test_status_of_a_run_killed_while_compensating_is_rollback(saga_crash: SagaCrash) -> None:
    """`status` of a run killed mid-compensation shows status rollback and exits 3."""
    assert saga_crash.status.code == 3, saga_crash.status.stderr
    assert saga_crash.status.json()["status"] == "rollback"


def test_resume_finishes_the_compensation_and_the_run_fails(saga_crash: SagaCrash) -> None:
    """`resume` in a new process runs the compensations left; the run ends failed (exit 1)."""
    assert saga_crash.resume.code == 1, saga_crash.resume.stderr
    assert saga_crash.resume.json()["status"] == "failed"
    assert saga_crash.resume.json()["error"]["step_id"] == "boom"


def test_each_compensation_finishes_once_newest_first(saga_crash: SagaCrash) -> None:
    """undo s3, s2 and s1 each finish exactly once, in that order, across the crash."""
    undos = [effect for effect in saga_crash.ws.effects() if effect[0] == "undo"]
    assert undos == [("undo", "s3"), ("undo", "s2"), ("undo", "s1")]


def test_forward_steps_do_not_run_again_after_the_crash(saga_crash: SagaCrash) -> None:
    """Resuming the compensation re-runs no forward step."""
    done = [effect for effect in saga_crash.ws.effects() if effect[0] == "do"]
    assert done == [("do", "s1"), ("do", "s2"), ("do", "s3"), ("do", "boom")]


def test_in_flight_compensation_reruns_with_the_same_idempotency_key(
    saga_crash: SagaCrash,
) -> None:
    """The compensation killed in flight runs again with the idempotency key of its first try."""
    first = (saga_crash.ws.root / "undo-s2.started").read_text(encoding="utf-8")
    assert saga_crash.ws.keys("undo", "s2") == [first]


def test_crashed_compensation_checkpoints_read_without_msgpack_warnings(
    saga_crash: SagaCrash,
) -> None:
    """Reading and resuming the killed run's checkpoints logs no msgpack allowlist warning."""
    for cli in (saga_crash.killed, saga_crash.status, saga_crash.resume):
        assert not [w for w in MSGPACK_WARNINGS if w in cli.stderr], cli.stderr


# -- approvals through the CLI ------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    """gate.yaml waiting for dana or erin: refused for mallory, then rejected by dana."""

    ws: Workspace
    run: Cli
    refused: Cli
    status: Cli
    reject: Cli


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> Decided:
    """Run gate.yaml to its approval, try mallory, check status, then reject as dana."""
    ws = _workspace(tmp_path_factory.mktemp("decided"))
    run = ws.cli("run", "gate.yaml", "--input", ws.input(), "--run-id", "G1")
    refused = ws.cli("approve", "G1", "--as", "mallory")
    status = ws.cli("status", "G1")
    reject = ws.cli("reject", "G1", "--as", "dana", "--reason", "limit exceeded")
    return Decided(ws, run, refused, status, reject)


def test_approve_by_a_user_not_allowed_exits_2(decided: Decided) -> None:
    """`approve --as` someone not listed exits 2 and names the allowed approvers."""
    assert decided.run.code == 3, decided.run.stderr
    assert decided.refused.code == 2
    assert "'mallory' may not decide" in decided.refused.stderr
    assert "dana, erin" in decided.refused.stderr


def test_run_keeps_waiting_after_a_refused_approver(decided: Decided) -> None:
    """After a refused approver, `status` still shows the run waiting with the same request."""
    assert decided.status.code == 3, decided.status.stderr
    assert decided.status.json()["status"] == "waiting_approval"
    assert decided.status.json()["pending_approval"] == decided.run.json()["pending_approval"]


def test_reject_fails_the_run_with_exit_1(decided: Decided) -> None:
    """`reject --as` an allowed approver fails the run at the approval step and exits 1."""
    assert decided.reject.code == 1, decided.reject.stderr
    out = decided.reject.json()
    assert out["status"] == "failed"
    assert out["error"]["step_id"] == "sign_off"
    assert "limit exceeded" in out["error"]["message"]


def test_reject_compensates_and_runs_no_later_step(decided: Decided) -> None:
    """A rejection undoes the completed step and the step after the approval never runs."""
    assert decided.ws.effects() == [("do", "prep"), ("undo", "prep")]


@dataclass(frozen=True)
class Swept:
    """deadline.yaml (timeout_seconds 1, on_timeout reject) swept after its deadline, twice."""

    run: Cli
    first: Cli
    second: Cli


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Swept:
    """Run deadline.yaml to its approval, let the deadline pass, sweep twice."""
    ws = _workspace(tmp_path_factory.mktemp("swept"))
    run = ws.cli("run", "deadline.yaml", "--input", ws.input(), "--run-id", "D1")
    time.sleep(1.2)
    return Swept(run, ws.cli("sweep"), ws.cli("sweep"))


def test_sweep_after_the_deadline_rejects_the_waiting_run(swept: Swept) -> None:
    """`sweep --json` decides the expired approval by on_timeout reject: the run fails."""
    assert swept.run.code == 3, swept.run.stderr
    assert swept.first.code == 0, swept.first.stderr
    runs = swept.first.json()["swept"]
    assert [(r["run_id"], r["status"]) for r in runs] == [("D1", "failed")]
    assert runs[0]["error"]["step_id"] == "sign_off"


def test_second_sweep_decides_nothing(swept: Swept) -> None:
    """A second `sweep` finds no expired approval left to decide."""
    assert swept.second.code == 0, swept.second.stderr
    assert swept.second.json() == {"swept": []}
