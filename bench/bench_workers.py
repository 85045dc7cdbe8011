"""Throughput of detached runs over worker processes, beside the in-process executor.

Queues 200 detached 5-step runs (10 ms per step) on a fresh Postgres database, starts 1, 2
and 4 `orchestrator worker` processes, and times until every run completed; then runs the
same 200 runs in one process with `execute_workflow` (100 at a time) on SQLite and on
Postgres. Prints one table: runs per second, and the scaling efficiency per added worker.

    ORCHESTRATOR_BENCH_POSTGRES=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/bench_workers.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from orchestrator import EnterpriseWorkflowOrchestrator

ACTIONS = """
import asyncio
from orchestrator import ActionRegistry

registry = ActionRegistry()


@registry.action("step")
async def step() -> dict:
    await asyncio.sleep(0.01)
    return {}
"""

WORKFLOW = """
name: bench
actions: bench_actions
steps:
  - {step_id: s1, action: step}
  - {step_id: s2, action: step, dependencies: [s1]}
  - {step_id: s3, action: step, dependencies: [s2]}
  - {step_id: s4, action: step, dependencies: [s3]}
  - {step_id: s5, action: step, dependencies: [s4]}
"""


def _database(base: str) -> tuple[str, str]:
    name = f"orch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, f"{base.rpartition('/')[0]}/{name}"


def _drop(base: str, name: str) -> None:
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def _submit(url: str, root: Path, runs: int) -> list[str]:
    orch = EnterpriseWorkflowOrchestrator(checkpointer=url)
    try:
        return [(await orch.submit(root / "bench.yaml", {})).run_id for _ in range(runs)]
    finally:
        await orch.aclose()


async def _wait(url: str, run_ids: list[str]) -> None:
    orch = EnterpriseWorkflowOrchestrator(checkpointer=url)
    try:
        for run_id in run_ids:
            run = await orch.wait(run_id, timeout=900, interval=0.1)
            assert run.status.value == "completed", run
    finally:
        await orch.aclose()


def with_workers(base: str, root: Path, runs: int, workers: int) -> float:
    """Runs per second of `runs` detached runs over `workers` worker processes."""
    name, url = _database(base)
    try:
        subprocess.run([sys.executable, "-m", "orchestrator", "db", "upgrade", "--db", url],
                       cwd=root, check=True, capture_output=True)  # fmt: skip
        run_ids = asyncio.run(_submit(url, root, runs))
        env = {**os.environ, "PYTHONPATH": str(root)}
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orchestrator",
                    "worker",
                    "--db",
                    url,
                    "--concurrency",
                    "10",
                ],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        asyncio.run(_wait(url, run_ids))
        elapsed = time.perf_counter() - start
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        return runs / elapsed
    finally:
        _drop(base, name)


async def _in_process(url: str, root: Path, runs: int) -> float:
    sys.path.insert(0, str(root))
    orch = EnterpriseWorkflowOrchestrator(checkpointer=url)
    try:
        await orch._open()
        start = time.perf_counter()
        for first in range(0, runs, 100):
            batch = range(first, min(runs, first + 100))
            await asyncio.gather(*(orch.execute_workflow(root / "bench.yaml", {}) for _ in batch))
        return runs / (time.perf_counter() - start)
    finally:
        await orch.aclose()


def in_process(base: str | None, root: Path, runs: int) -> float:
    """Runs per second in one process (100 concurrent runs at a time)."""
    if base is None:
        return asyncio.run(_in_process(f"sqlite:///{root / 'runs.sqlite'}", root, runs))
    name, url = _database(base)
    try:
        return asyncio.run(_in_process(url, root, runs))
    finally:
        _drop(base, name)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    base = os.environ.get(
        "ORCHESTRATOR_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bench_actions.py").write_text(ACTIONS, encoding="utf-8")
        (root / "bench.yaml").write_text(WORKFLOW, encoding="utf-8")
        print(f"{args.runs} runs x 5 steps x 10 ms; load average {os.getloadavg()[0]:.1f}; "
              f"{os.cpu_count()} cores")  # fmt: skip
        rows = [
            ("in-process, SQLite", in_process(None, root, args.runs)),
            ("in-process, Postgres", in_process(base, root, args.runs)),
        ]
        single = None
        for n in (1, 2, 4):
            rate = with_workers(base, root, args.runs, n)
            single = single or rate
            rows.append((f"{n} worker(s), Postgres", rate, rate / (single * n)))
        print(f"{'executor':<24} {'runs/s':>8} {'efficiency':>11}")
        for row in rows:
            eff = f"{row[2]:.2f}" if len(row) > 2 else "-"
            print(f"{row[0]:<24} {row[1]:>8.1f} {eff:>11}")


if __name__ == "__main__":
    main()
