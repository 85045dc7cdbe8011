"""A scene for tests that drive the CLI from several real processes on one run database.

Its actions append `<event> <step_id>` to the run's log file (the side effects the tests
count); `racer.py` waits for a `go` file and then calls the CLI, so processes act together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPEAT = int(os.environ.get("ORCHESTRATOR_RACE_REPEAT", "2"))
WAIT = 60.0

ACTIONS = '''
"""Actions that append `<event> <step_id>` to the log named by the run input."""

import asyncio
from pathlib import Path

from orchestrator import ActionRegistry, StepContext

registry = ActionRegistry()


def _log(path, line):
    with Path(path).open("a", encoding="utf-8") as log:
        log.write(line + "\\n")


@registry.action("record")
async def record(log: str, ctx: StepContext) -> dict:
    _log(log, f"do {ctx.step_id}")
    return {"step": ctx.step_id}


@registry.action("slow")
async def slow(log: str, ctx: StepContext) -> dict:
    _log(log, f"start {ctx.step_id}")
    folder = Path(log).parent
    (folder / f"{ctx.step_id}.started").write_text("", encoding="utf-8")
    while not (folder / "fast").exists():
        await asyncio.sleep(0.02)
    _log(log, f"do {ctx.step_id}")
    return {"step": ctx.step_id}


@registry.action("undo")
async def undo(step_id: str, context: dict) -> dict:
    _log(context["log"], f"undo {step_id}")
    return {"undone": step_id}
'''

RACER = """
import os, sys, time
from orchestrator._cli import main
go = sys.argv[1]
open(f"{go}.{os.getpid()}.ready", "w").close()  # imported: ready to go
while not os.path.exists(go):
    time.sleep(0.002)
sys.exit(main(sys.argv[2:]))
"""

APPROVAL = """
name: race-approval
actions: race_actions
steps:
  - step_id: ask
    step_type: human_approval
    approval: {approvers: [alice, bob], min_approvals: 1}
  - step_id: after
    action: record
    dependencies: [ask]
    input_mapping: {log: input.log}
"""

CHAIN = """
name: race-chain
actions: race_actions
steps:
  - {step_id: a, action: record, input_mapping: {log: input.log}}
  - {step_id: b, action: slow, dependencies: [a], input_mapping: {log: input.log}}
  - {step_id: c, action: record, dependencies: [b], input_mapping: {log: input.log}}
  - {step_id: d, action: record, dependencies: [c], input_mapping: {log: input.log}}
"""

SAGA = """
name: race-saga
actions: race_actions
steps:
  - {step_id: a, action: record, input_mapping: {log: input.log}}
  - step_id: pay
    action: record
    dependencies: [a]
    rollback_point: true
    rollback_actions: [undo]
    input_mapping: {log: input.log}
  - step_id: ship
    action: record
    dependencies: [pay]
    rollback_actions: [undo]
    input_mapping: {log: input.log}
"""


DEADLINE = """
name: race-deadline
actions: race_actions
steps:
  - step_id: ask
    step_type: human_approval
    approval: {approvers: [alice], timeout_seconds: 1, on_timeout: reject}
  - step_id: after
    action: record
    dependencies: [ask]
    input_mapping: {log: input.log}
"""

WORKFLOWS = {"approval": APPROVAL, "chain": CHAIN, "saga": SAGA, "deadline": DEADLINE}


@dataclass(frozen=True)
class Done:
    """One finished process."""

    code: int
    out: str
    err: str


@dataclass
class Scene:
    """A directory with the actions, the workflows, one run database and one run's log."""

    root: Path
    db: str
    env: dict[str, str]

    @classmethod
    def make(cls, root: Path, db: str, **env: str) -> Scene:
        root.mkdir(parents=True, exist_ok=True)
        (root / "race_actions.py").write_text(ACTIONS, encoding="utf-8")
        (root / "racer.py").write_text(RACER, encoding="utf-8")
        for name, text in WORKFLOWS.items():
            (root / f"{name}.yaml").write_text(text, encoding="utf-8")
        return cls(root, db, {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true", **env})

    @property
    def log(self) -> Path:
        return self.root / "effects.log"

    def input(self) -> str:
        return json.dumps({"log": str(self.log)})

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Done:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, "--db", self.db],
            cwd=self.root,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        return Done(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args, "--db", self.db],
            cwd=self.root,
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def together(self, *commands: list[str]) -> list[Done]:
        """Start one process per command; release them at the same moment."""
        go = self.root / f"go-{time.monotonic_ns()}"
        procs = [
            subprocess.Popen(
                [sys.executable, "racer.py", str(go), *cmd, "--db", self.db],
                cwd=self.root,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for cmd in commands
        ]
        deadline = time.monotonic() + WAIT
        while len(list(self.root.glob(f"{go.name}.*.ready"))) < len(procs):
            assert time.monotonic() < deadline, "racers never got ready"
            time.sleep(0.01)
        go.write_text("", encoding="utf-8")  # every racer has imported the project: release
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=WAIT)
            results.append(Done(proc.returncode, out, err))
        return results

    def effects(self) -> Counter[str]:
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        return Counter(lines)

    def wait_for(self, what: str, ready: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + WAIT
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{what} never happened: {proc.communicate()[1]}")
            time.sleep(0.02)
