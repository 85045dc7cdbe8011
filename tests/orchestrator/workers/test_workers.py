"""Workers on the real Postgres: detached runs shared by worker processes, faults, deadlines.

Each test has its own database and directory; its actions append
`<run_id> <step_id> <idempotency_key> <pid>` to `effects.log` (the side effect the tests
count). Workers are real `orchestrator worker` processes, stopped with SIGTERM or SIGKILL.
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
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import EnterpriseWorkflowOrchestrator
from state import WorkflowStatus

pytestmark = pytest.mark.timeout(600)

ACTIONS = '''
import asyncio, os
from pathlib import Path
from orchestrator import ActionRegistry, StepContext

registry = ActionRegistry()
ROOT = Path(__file__).parent


def _log(ctx):
    with (ROOT / "effects.log").open("a", encoding="utf-8") as log:
        log.write(f"{ctx.run_id} {ctx.step_id} {ctx.idempotency_key} {os.getpid()}\\n")


@registry.action("work")
async def work(ctx: StepContext) -> dict:
    await asyncio.sleep(0.01)
    _log(ctx)
    return {"step": ctx.step_id}


@registry.action("hold")
async def hold(ctx: StepContext) -> dict:
    """Log, mark the start, and wait until `release` exists."""
    _log(ctx)
    (ROOT / f"{ctx.run_id}.{ctx.step_id}.started").write_text(str(os.getpid()))
    while not (ROOT / "release").exists():
        await asyncio.sleep(0.02)
    return {"step": ctx.step_id}
'''

FANOUT = """
name: fan
actions: worker_actions
max_parallel_steps: 4
steps:
  - {step_id: a, action: work}
  - step_id: p
    step_type: parallel
    dependencies: [a]
    parallel_steps:
      - {step_id: p1, step_type: worker, action: work}
      - {step_id: p2, step_type: worker, action: work}
  - {step_id: z, action: work, dependencies: [p]}
"""

HOLD = """
name: hold
actions: worker_actions
steps:
  - {step_id: a, action: work}
  - {step_id: h, action: hold, dependencies: [a]}
  - {step_id: z, action: work, dependencies: [h]}
"""

APPROVE = """
name: approve
actions: worker_actions
steps:
  - {step_id: a, action: work}
  - step_id: ask
    step_type: human_approval
    dependencies: [a]
    approval: {approvers: [ana], timeout_seconds: DEADLINE, on_timeout: reject}
  - {step_id: z, action: work, dependencies: [ask]}
"""


class Site:
    """A directory with the actions and workflows, one Postgres database, and its workers."""

    def __init__(self, root: Path, db: str, ttl: str = "4") -> None:
        self.root, self.db = root, db
        (root / "worker_actions.py").write_text(ACTIONS, encoding="utf-8")
        (root / "fan.yaml").write_text(FANOUT, encoding="utf-8")
        (root / "hold.yaml").write_text(HOLD, encoding="utf-8")
        self.env = {
            **os.environ,
            "LANGGRAPH_STRICT_MSGPACK": "true",
            "ORCHESTRATOR_LEASE_TTL": ttl,
            "PYTHONPATH": str(root),
        }
        self.workers: list[subprocess.Popen[str]] = []

    def worker(self, concurrency: int = 4, *extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "worker", "--db", self.db,
             "--concurrency", str(concurrency), "--grace", "20", *extra],
            cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, "--db", self.db],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip

    def effects(self) -> list[list[str]]:
        path = self.root / "effects.log"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [line.split() for line in lines]

    def wait_file(self, path: Path, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, f"{path.name} never appeared"
            time.sleep(0.05)

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def site(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A site on a fresh Postgres database; its workers are stopped afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made = Site(tmp_path, pg_url)
    assert made.cli("db", "upgrade").returncode == 0
    yield made
    made.stop_all()


async def _submit_many(site: Site, workflow: str, count: int) -> list[str]:
    orch = EnterpriseWorkflowOrchestrator(checkpointer=site.db)
    try:
        runs = [await orch.submit(site.root / workflow, {}) for _ in range(count)]
        assert {r.status for r in runs} == {WorkflowStatus.PENDING}
        return [r.run_id for r in runs]
    finally:
        await orch.aclose()


async def _wait_all(site: Site, run_ids: list[str], timeout: float = 240) -> list[WorkflowStatus]:
    orch = EnterpriseWorkflowOrchestrator(checkpointer=site.db)
    try:
        return [(await orch.wait(r, timeout=timeout)).status for r in run_ids]
    finally:
        await orch.aclose()


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_share_fifty_runs_and_run_every_step_once(site: Site, workers: int) -> None:
    """50 detached runs over N workers: every run completes, every step ran exactly once."""
    run_ids = asyncio.run(_submit_many(site, "fan.yaml", 50))
    for _ in range(workers):
        site.worker(concurrency=4)
    statuses = asyncio.run(_wait_all(site, run_ids))
    assert statuses == [WorkflowStatus.COMPLETED] * 50
    executed = Counter((run, step) for run, step, _, _ in site.effects())
    assert set(executed.values()) == {1}
    assert len(executed) == 50 * 4  # a, the container's p1 and p2, z
    pids = {pid for *_, pid in site.effects()}
    assert len(pids) >= 2  # the work was shared


def test_a_worker_killed_mid_step_is_replaced_by_another(site: Site) -> None:
    """SIGKILL mid-step: another worker takes the run once the lease lapses; finished steps do
    not run again; the step in flight runs again with the same idempotency key."""
    first = site.worker(concurrency=1)
    (run_id,) = asyncio.run(_submit_many(site, "hold.yaml", 1))
    site.wait_file(site.root / f"{run_id}.h.started")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    (site.root / "release").write_text("")
    site.worker(concurrency=1)
    assert asyncio.run(_wait_all(site, [run_id], timeout=120)) == [WorkflowStatus.COMPLETED]
    steps = [(step, key) for _, step, key, _ in site.effects()]
    assert [s for s, _ in steps] == ["a", "h", "h", "z"]
    assert steps[1][1] == steps[2][1]  # same idempotency key for the re-run


def test_sigterm_drains_and_another_worker_finishes(site: Site) -> None:
    """SIGTERM: the worker exits 0 after the step in flight; the run continues elsewhere."""
    first = site.worker(concurrency=1)
    (run_id,) = asyncio.run(_submit_many(site, "hold.yaml", 1))
    site.wait_file(site.root / f"{run_id}.h.started")
    first.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    (site.root / "release").write_text("")
    assert first.wait(timeout=60) == 0
    assert Counter(s for _, s, _, _ in site.effects())["z"] == 0  # it stopped at the boundary
    second = site.worker(concurrency=1)
    assert asyncio.run(_wait_all(site, [run_id], timeout=120)) == [WorkflowStatus.COMPLETED]
    steps = Counter(s for _, s, _, _ in site.effects())
    assert steps == Counter({"a": 1, "h": 1, "z": 1})
    z_pid = next(pid for _, s, _, pid in site.effects() if s == "z")
    assert z_pid == str(second.pid)


def test_an_approval_decided_while_parked_is_continued_by_another_worker(site: Site) -> None:
    """A run waits with no worker at it; its approval is queued and a new worker finishes it."""
    (site.root / "approve.yaml").write_text(APPROVE.replace("DEADLINE", "3600"))
    first = site.worker(concurrency=1)
    (run_id,) = asyncio.run(_submit_many(site, "approve.yaml", 1))
    assert asyncio.run(_wait_all(site, [run_id])) == [WorkflowStatus.WAITING_APPROVAL]
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0
    decided = site.cli("approve", run_id, "--as", "ana", "--json")
    assert decided.returncode == 0, decided.stderr
    assert json.loads(decided.stdout)["status"] == "pending"
    second = site.worker(concurrency=1)
    waited = site.cli("status", run_id, "--wait", "--timeout", "120", "--json")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["status"] == "completed"
    z_pid = next(pid for _, s, _, pid in site.effects() if s == "z")
    assert z_pid == str(second.pid)


def test_an_approval_deadline_fires_without_sweep(site: Site) -> None:
    """A 2 s approval deadline rejects the run by itself (a deferred job), no `sweep`."""
    (site.root / "approve.yaml").write_text(APPROVE.replace("DEADLINE", "2"))
    site.worker(concurrency=2)
    (run_id,) = asyncio.run(_submit_many(site, "approve.yaml", 1))
    waited = site.cli("status", run_id, "--wait", "--timeout", "30", "--json")
    assert json.loads(waited.stdout)["status"] == "waiting_approval"
    time.sleep(2.5)
    final = site.cli("status", run_id, "--wait", "--timeout", "60", "--json")
    assert json.loads(final.stdout)["status"] == "failed", final.stdout
    assert Counter(s for _, s, _, _ in site.effects())["z"] == 0


def test_a_cli_process_killed_mid_run_is_recovered_by_a_worker(site: Site) -> None:
    """A plain `run` killed mid-step is re-queued by the workers' periodic recovery."""
    site.worker(concurrency=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "hold.yaml", "--run-id", "cli-run",
         "--db", site.db],
        cwd=site.root, env=site.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    site.wait_file(site.root / "cli-run.h.started")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (site.root / "release").write_text("")
    assert asyncio.run(_wait_all(site, ["cli-run"], timeout=120)) == [WorkflowStatus.COMPLETED]
    assert [s for _, s, _, _ in site.effects()] == ["a", "h", "h", "z"]


def test_status_wait_times_out_with_exit_3(site: Site) -> None:
    """With no worker, `status --wait --timeout 1` says it timed out and exits 3."""
    (run_id,) = asyncio.run(_submit_many(site, "fan.yaml", 1))
    waited = site.cli("status", run_id, "--wait", "--timeout", "1")
    assert waited.returncode == 3
    assert "timed out after 1s" in waited.stderr
    assert "pending" in waited.stdout


def test_detach_on_sqlite_names_the_fix(tmp_path: Path) -> None:
    """`run --detach` on SQLite refuses with a message asking for Postgres (exit 2)."""
    (tmp_path / "worker_actions.py").write_text(ACTIONS, encoding="utf-8")
    (tmp_path / "fan.yaml").write_text(FANOUT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "fan.yaml", "--detach",
         "--db", f"sqlite:///{tmp_path / 'r.sqlite'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "need a Postgres run database" in done.stderr


def test_a_worker_serves_its_metrics(site: Site) -> None:
    """`--metrics-port` serves finished jobs by operation and the queue's depth and states."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site.worker(1, "--metrics-port", str(port))
    (run_id,) = asyncio.run(_submit_many(site, "fan.yaml", 1))
    assert asyncio.run(_wait_all(site, [run_id])) == [WorkflowStatus.COMPLETED]
    expected = [
        'orchestrator_worker_jobs_total{op="start",outcome="done"} 1.0',
        "orchestrator_queue_depth 0.0",
        'orchestrator_queue_jobs{state="succeeded"}',
        'orchestrator_runs_finished_total{status="completed",workflow="fan"} 1.0',
    ]
    deadline = time.monotonic() + 60
    while True:  # the queue gauges are refreshed by the periodic job (every 5 s)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        missing = [line for line in expected if line not in text]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert missing == [], text
