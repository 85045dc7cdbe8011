"""Races between real processes started together, on SQLite and on Postgres.

Every scenario prepares a run, then starts several `orchestrator` processes that each wait for
a `go` file before calling the CLI, so they act at the same moment. Each action appends
`<event> <step_id>` to the run's log file: the side effects are counted in the actions
themselves. Each scenario is repeated `ORCHESTRATOR_RACE_REPEAT` times (default 2; the
repetitions run side by side, which makes the races denser, not rarer).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import MSGPACK_WARNINGS
from scene import REPEAT, WAIT, Done, Scene

from orchestrator import EnterpriseWorkflowOrchestrator

pytestmark = pytest.mark.timeout(600)  # several processes per repetition


def _repeat(scenario: Callable[[int], None]) -> None:
    with ThreadPoolExecutor(max_workers=REPEAT) as pool:
        for future in [pool.submit(scenario, n) for n in range(REPEAT)]:
            future.result()


def _clean(done: Done) -> None:
    assert not any(text in done.err for text in MSGPACK_WARNINGS), done.err
    assert "Traceback" not in done.err, done.err


def _audit(scene: Scene, run_id: str) -> list[dict[str, Any]]:
    """The run's audit trail, after checking its chain (in this process: cheaper than a CLI)."""

    async def read() -> tuple[Any, list[dict[str, Any]]]:
        orch = EnterpriseWorkflowOrchestrator(checkpointer=scene.db)
        try:
            return await orch.verify_audit(run_id), await orch.audit_trail(run_id)
        finally:
            await orch.aclose()

    verified, entries = asyncio.run(read())
    assert verified.ok, verified.reason
    return entries


def _status(scene: Scene, run_id: str) -> str:
    """The run's status, read in this process."""

    async def read() -> str:
        orch = EnterpriseWorkflowOrchestrator(checkpointer=scene.db)
        try:
            return (await orch.status(run_id)).status.value
        finally:
            await orch.aclose()

    return asyncio.run(read())


def _waiting_run(scene: Scene) -> str:
    started = scene.cli("run", "approval.yaml", "--input", scene.input(), "--json")
    assert started.code == 3, started.err
    run_id: str = json.loads(started.out)["run_id"]
    return run_id


def test_concurrent_approvals_apply_one_decision(any_db: str, tmp_path: Path) -> None:
    """alice and bob approving a 1-of-2 approval at once: the next step runs exactly once."""

    def scenario(n: int) -> None:
        scene = Scene.make(tmp_path / f"s{n}", any_db)
        run_id = _waiting_run(scene)
        results = scene.together(
            ["approve", run_id, "--as", "alice"], ["approve", run_id, "--as", "bob"]
        )
        for done in results:
            _clean(done)
        assert sorted(d.code for d in results) == [0, 2], results
        refused = next(d for d in results if d.code == 2)
        assert "changed nothing" in refused.err or "not waiting" in refused.err, refused.err
        assert scene.effects() == Counter({"do after": 1})
        events = Counter(e["event"] for e in _audit(scene, run_id))
        assert events["approval_approved"] == 1
        assert events["run_finished"] == 1

    _repeat(scenario)


def test_approve_against_reject_applies_exactly_one(any_db: str, tmp_path: Path) -> None:
    """An approve and a reject at once: one decision wins and the run follows it alone."""

    def scenario(n: int) -> None:
        scene = Scene.make(tmp_path / f"s{n}", any_db)
        run_id = _waiting_run(scene)
        results = scene.together(
            ["approve", run_id, "--as", "alice"], ["reject", run_id, "--as", "bob"]
        )
        for done in results:
            _clean(done)
        winner = [d for d in results if d.code != 2]
        assert len(winner) == 1, results
        status = _status(scene, run_id)
        events = Counter(e["event"] for e in _audit(scene, run_id))
        decided = events["approval_approved"] + events["approval_rejected"]
        assert decided == 1
        assert events["run_finished"] == 1
        if status == "completed":
            assert winner[0] is results[0]
            assert scene.effects() == Counter({"do after": 1})
        else:
            assert status == "failed"
            assert winner[0] is results[1]
            assert scene.effects() == Counter()

    _repeat(scenario)


def test_concurrent_resumes_run_each_remaining_step_once(any_db: str, tmp_path: Path) -> None:
    """Three resumes of a crashed run at once: one continues it, the others change nothing."""

    def scenario(n: int) -> None:
        scene = Scene.make(tmp_path / f"s{n}", any_db)
        run_id = f"chain-{n}"
        proc = scene.start("run", "chain.yaml", "--input", scene.input(), "--run-id", run_id)
        scene.wait_for("b's start", (scene.root / "b.started").exists, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT)
        (scene.root / "fast").write_text("", encoding="utf-8")
        results = scene.together(*[["resume", run_id] for _ in range(3)])
        for done in results:
            _clean(done)
        assert sorted(d.code for d in results) == [0, 2, 2], results
        assert scene.effects() == Counter(
            {"do a": 1, "start b": 2, "do b": 1, "do c": 1, "do d": 1}
        )
        assert Counter(e["event"] for e in _audit(scene, run_id))["run_finished"] == 1

    _repeat(scenario)


def test_concurrent_rollbacks_compensate_once(any_db: str, tmp_path: Path) -> None:
    """Two rollbacks to the same point at once: every compensation runs exactly once."""

    def scenario(n: int) -> None:
        scene = Scene.make(tmp_path / f"s{n}", any_db)
        done = scene.cli("run", "saga.yaml", "--input", scene.input(), "--json")
        assert done.code == 0, done.err
        run_id = json.loads(done.out)["run_id"]
        results = scene.together(*[["rollback", run_id, "--to", "pay"] for _ in range(2)])
        for result in results:
            _clean(result)
        assert 3 in [d.code for d in results], results  # the one that rolled back: paused
        effects = scene.effects()
        assert effects["undo ship"] == 1, effects
        assert effects["undo pay"] == 1, effects
        assert _status(scene, run_id) == "paused"

    _repeat(scenario)


def test_pause_and_cancel_together_end_cancelled(any_db: str, tmp_path: Path) -> None:
    """A pause and a cancel sent at once to a waiting run: the cancel is never lost."""

    def scenario(n: int) -> None:
        scene = Scene.make(tmp_path / f"s{n}", any_db)
        run_id = _waiting_run(scene)
        results = scene.together(["pause", run_id], ["cancel", run_id])
        for done in results:
            _clean(done)
        assert _status(scene, run_id) == "cancelled"
        assert results[1].code == 1, results  # cancel reports the cancelled run
        assert scene.effects() == Counter()

    _repeat(scenario)


def test_an_expired_lease_of_a_killed_process_on_another_host_is_taken_over(
    any_db: str, tmp_path: Path
) -> None:
    """A run killed on "host-a" is refused to "host-b" until its lease expires, then resumed."""
    scene = Scene.make(tmp_path, any_db, ORCHESTRATOR_LEASE_TTL="4")
    proc = scene.start(
        "run", "chain.yaml", "--input", scene.input(), "--run-id", "moved",
        env={**scene.env, "ORCHESTRATOR_HOST_ID": "host-a"},
    )  # fmt: skip
    scene.wait_for("b's start", (scene.root / "b.started").exists, proc)
    killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=WAIT)
    (scene.root / "fast").write_text("", encoding="utf-8")
    other = {**scene.env, "ORCHESTRATOR_HOST_ID": "host-b"}
    asked_at = time.monotonic()
    early = scene.cli("resume", "moved", env=other)
    if early.code == 2:  # inside the 4 s lease: refused, naming the holder
        assert asked_at - killed_at < 4.0, early.err
        assert "on host-a" in early.err
        assert scene.effects()["do c"] == 0
        time.sleep(max(0.0, 4.5 - (time.monotonic() - killed_at)))
        late = scene.cli("resume", "moved", env=other)
    else:  # the machine was too slow to ask inside the lease: the takeover still holds
        late = early
    _clean(late)
    assert late.code == 0, late.err
    assert scene.effects() == Counter({"do a": 1, "start b": 2, "do b": 1, "do c": 1, "do d": 1})


def test_runs_started_together_on_a_new_database_all_open_it(any_db: str, tmp_path: Path) -> None:
    """Four processes starting runs at once on a database nobody created yet all complete
    (SQLite can answer "database is locked" there without waiting: it is retried)."""

    def scenario(n: int) -> None:
        root = tmp_path / f"s{n}"
        db = any_db if any_db.startswith("postgresql") else f"sqlite:///{root / 'new.sqlite'}"
        scene = Scene.make(root, db)
        run = ["run", "saga.yaml", "--input", scene.input(), "--json"]
        results = scene.together(*[run for _ in range(4)])
        for done in results:
            _clean(done)
        assert [d.code for d in results] == [0, 0, 0, 0], results

    _repeat(scenario)
