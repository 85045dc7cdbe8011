"""The crash matrix's driver: runs one workflow, killed with SIGKILL at each point, and resumes it.

Usage: `python crash_driver.py WORKDIR` prints one JSON object per scenario on stdout.

The driver imports everything once and then forks one child per process of a scenario, so
each kill is a real process dying by SIGKILL (it signals itself at the chosen point, in an
action, before or after its side effect) and each resume is a new process opening the same
SQLite file. The driver itself never opens a database or starts a thread, so forking it is
safe.

The workflow has every kind of step the matrix names: a sequential step with a
compensation, a parallel container, a conditional, an approval, a loop and a final step that
can fail (which makes the run compensate). Every action appends `<name> <idempotency_key>` to
`effects.log`: the side effects the test compares with those of an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator, StepContext
from state import AdvancedWorkflow, WorkflowStatus

registry = ActionRegistry()
_WORK: dict[str, Path] = {}


def _effect(name: str, key: str) -> None:
    """Append the effect, dying first or after when the scenario's kill point says so."""
    log = _WORK["dir"] / "effects.log"
    done = sum(1 for line in _lines(log) if line.split(" ")[0] == name)
    point = os.environ.get("CRASH_AT", "")
    target, phase, nth = [*point.split(":"), "", "", "0"][:3] if point else ("", "", "0")
    if target == name and phase == "start" and done == int(nth) - 1:
        os.kill(os.getpid(), signal.SIGKILL)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"{name} {key}\n")
    if target == name and phase == "mid" and done + 1 == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@registry.action("rec")
async def rec(ctx: StepContext) -> dict[str, str]:
    _effect(ctx.step_id, ctx.idempotency_key)
    return {"done": ctx.step_id}


@registry.action("count")
async def count(ctx: StepContext, n: int | None = None) -> dict[str, int]:
    _effect(ctx.step_id, ctx.idempotency_key)
    return {"n": (n or 0) + 1}


@registry.action("charge")
async def charge(ctx: StepContext, fail: bool = False) -> dict[str, str]:
    _effect(ctx.step_id, ctx.idempotency_key)
    if fail:
        raise RuntimeError("card declined")
    return {"charged": "yes"}


@registry.action("undo")
async def undo(step_id: str, ctx: StepContext) -> None:
    _effect(f"undo-{step_id}", ctx.idempotency_key)


WORKFLOW = AdvancedWorkflow.from_dict(
    {
        "name": "crash matrix",
        "retry_policy": {"max_attempts": 1},
        "steps": [
            {"step_id": "prepare", "action": "rec", "rollback_actions": ["undo"]},
            {
                "step_id": "fan",
                "step_type": "parallel",
                "dependencies": ["prepare"],
                "parallel_steps": [
                    {"step_id": "c1", "step_type": "worker", "action": "rec"},
                    {"step_id": "c2", "step_type": "worker", "action": "rec"},
                ],
            },
            {
                "step_id": "route",
                "step_type": "conditional",
                "dependencies": ["fan"],
                "conditions": [{"if": "input.amount >= 100", "then": ["big"]}, {"else": ["small"]}],
            },
            {"step_id": "big", "action": "rec", "rollback_actions": ["undo"]},
            {"step_id": "small", "action": "rec"},
            {
                "step_id": "approve",
                "step_type": "human_approval",
                "dependencies": ["big", "small"],
                "approval": {"approvers": ["ada"]},
            },
            {
                "step_id": "draft",
                "step_type": "loop",
                "dependencies": ["approve"],
                "loop_condition": "context.drafts < 2",
                "loop_max_iterations": 5,
                "body": [
                    {
                        "step_id": "write",
                        "action": "count",
                        "input_mapping": {"n": "context.drafts"},
                        "output_mapping": {"drafts": "n"},
                    }
                ],
            },
            {
                "step_id": "pay",
                "action": "charge",
                "dependencies": ["draft"],
                "input_mapping": {"fail": "input.fail"},
            },
        ],
    }
)

POINTS = [
    *(f"{step}:{phase}:1" for step in ("prepare", "c1", "c2", "big") for phase in ("start", "mid")),
    "write:start:1",
    "write:mid:1",
    "write:mid:2",
    "pay:start:1",
    "pay:mid:1",
]
"""Kill points of the passing run: before and after the effect of every action."""

FAILING_POINTS = ["pay:mid:1", "undo-big:start:1", "undo-big:mid:1", "undo-prepare:mid:1"]
"""Kill points of the failing run: the failing step, and in the middle of compensation."""


def _orch(db: str) -> EnterpriseWorkflowOrchestrator:
    return EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=db)


async def _first(db: str, run_id: str, fail: bool) -> str:
    async with _orch(db) as orch:
        run = await orch.execute_workflow(WORKFLOW, {"amount": 500, "fail": fail}, run_id=run_id)
        if run.status is WorkflowStatus.WAITING_APPROVAL:
            run = await orch.approve(run_id, approver="ada")  # continuing after an approval
        return run.status.value


async def _finish(db: str, run_id: str) -> dict[str, Any]:
    async with _orch(db) as orch:
        run = await orch.status(run_id)
        for _ in range(6):
            if run.status.is_terminal:
                break
            if run.status is WorkflowStatus.WAITING_APPROVAL:
                run = await orch.approve(run_id, approver="ada")
            else:
                run = await orch.resume(run_id)
        audit = await orch.verify_audit(run_id)
        return {"status": run.status.value, "audit_ok": audit.ok, "audit": audit.reason}


def _in_child(work: Path, crash_at: str | None, job: Any) -> tuple[int, Any]:
    """Run `job()` in a forked child; return its wait status and what it wrote."""
    out = work / f"child-{os.getpid()}-{len(list(work.iterdir()))}.json"
    pid = os.fork()
    if pid == 0:  # the child: a real process of its own
        code = 0
        try:
            _WORK["dir"] = work
            if crash_at:
                os.environ["CRASH_AT"] = crash_at
            else:
                os.environ.pop("CRASH_AT", None)
            out.write_text(json.dumps(asyncio.run(job())), encoding="utf-8")
        except BaseException as exc:  # reported to the parent, then exit
            out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)  # reaped, so the run index sees the owner is dead
    result = json.loads(out.read_text()) if out.exists() else None
    return status, result


def scenario(root: Path, name: str, crash_at: str | None, fail: bool) -> dict[str, Any]:
    """One scenario: a first process (killed at `crash_at`), then new ones until it ends."""
    work = root / name.replace(":", "_")
    work.mkdir(parents=True)
    db = f"sqlite:///{work / 'runs.sqlite'}"
    status, first = _in_child(work, crash_at, lambda: _first(db, "R", fail))
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    _, final = _in_child(work, None, lambda: _finish(db, "R"))
    return {
        "name": name,
        "crash_at": crash_at,
        "fail": fail,
        "killed": killed,
        "first": first,
        "final": final,
        "effects": _lines(work / "effects.log"),
    }


def main() -> None:
    root = Path(sys.argv[1])
    plans = [("reference", None, False), ("reference-failing", None, True)]
    plans += [(f"pass-{p}", p, False) for p in POINTS]
    plans += [(f"fail-{p}", p, True) for p in FAILING_POINTS]
    for name, point, fail in plans:
        print(json.dumps(scenario(root, name, point, fail)), flush=True)


if __name__ == "__main__":
    main()
