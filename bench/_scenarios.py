"""The issue's figures beyond one sequential chain: DAGs, throughput, parked runs, imports.

Each factory returns a `RunOnce` for `measure`, so these run interleaved with the rest. A
figure that is not a time travels in `Timing.inner` (bytes per parked run).
"""

from __future__ import annotations

import asyncio
import gc
import operator
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from bench._measure import RunOnce, Timing, saver_for, timed
from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from orchestrator.storage._ledger_db import LedgerDb
from state import AdvancedWorkflow

# -- storage ---------------------------------------------------------------------------------


def ours_url(storage: str, path: Path, pg_url: str | None) -> str:
    """Our checkpointer URL for `sqlite`, `memory` or `postgres`."""
    if storage == "memory":
        return "memory"
    if storage == "postgres":
        if pg_url is None:
            raise ValueError("postgres benchmarks need a database URL")
        return pg_url
    return f"sqlite:///{path}"


@asynccontextmanager
async def raw_saver(
    storage: str, path: Path, pg_url: str | None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """LangGraph's own saver for `sqlite` (WAL, like ours), `memory` or `postgres`."""
    if storage == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(str(pg_url)) as saver:
            await saver.setup()
            yield saver
        return
    async with saver_for(path, storage) as saver:
        yield saver


# -- random DAGs (critical path) -------------------------------------------------------------


@dataclass(frozen=True)
class Dag:
    """A random DAG: `deps[i]` are earlier steps, `ms[i]` the duration of step i."""

    deps: list[list[int]]
    ms: list[int]

    @property
    def critical_path(self) -> float:
        """Seconds of the longest chain of durations: no scheduler can finish sooner."""
        finish: list[float] = []
        for i, deps in enumerate(self.deps):
            finish.append(max((finish[d] for d in deps), default=0.0) + self.ms[i] / 1e3)
        return max(finish)


def random_dag(n: int, seed: int) -> Dag:
    """`n` steps of 5-50 ms; each depends on 0-3 of the 8 steps before it."""
    rng = random.Random(seed)
    deps = [
        sorted(rng.sample(range(max(0, i - 8), i), min(i, rng.randint(0, 3)))) for i in range(n)
    ]
    return Dag(deps, [rng.randint(5, 50) for _ in range(n)])


def dag_registry(dag: Dag, marks: list[float] | None = None) -> ActionRegistry:
    """One `sleep_<ms>` action per duration the DAG uses; each appends its start and end
    (`time.monotonic()`) to `marks` when given."""
    registry = ActionRegistry()
    for ms in set(dag.ms):

        async def sleep(seconds: float = ms / 1e3) -> dict[str, Any]:
            if marks is not None:
                marks.append(time.monotonic())
            await asyncio.sleep(seconds)
            if marks is not None:
                marks.append(time.monotonic())
            return {}

        registry.register(f"sleep_{ms}", sleep)
    return registry


def dag_definition(dag: Dag) -> dict[str, Any]:
    """The DAG as a workflow (every step may run at once: cap = n)."""
    return {
        "name": "bench-dag",
        "retry_policy": {"max_attempts": 1},
        "max_parallel_steps": len(dag.ms),
        "steps": [
            {"step_id": f"d{i}", "action": f"sleep_{ms}", "dependencies": [f"d{d}" for d in deps]}
            for i, (deps, ms) in enumerate(zip(dag.deps, dag.ms, strict=True))
        ],
    }


class DagState(TypedDict):
    """Raw DAG state: steps done."""

    done: Annotated[list[int], operator.add]


def raw_dag(dag: Dag) -> StateGraph[Any]:
    """The DAG in raw LangGraph: a node per step, `add_edge([deps], step)` joins."""
    builder = StateGraph(DagState)
    has_successor = {d for deps in dag.deps for d in deps}
    for i, ms in enumerate(dag.ms):

        async def node(_: DagState, i: int = i, seconds: float = ms / 1e3) -> dict[str, Any]:
            await asyncio.sleep(seconds)
            return {"done": [i]}

        builder.add_node(f"d{i}", node)
        deps = dag.deps[i]
        if not deps:
            builder.add_edge(START, f"d{i}")
        elif len(deps) == 1:
            builder.add_edge(f"d{deps[0]}", f"d{i}")
        else:
            builder.add_edge([f"d{d}" for d in deps], f"d{i}")
        if i not in has_successor:
            builder.add_edge(f"d{i}", END)
    return builder


def ours_dags(dags: list[Dag], spans: list[float] | None = None) -> RunOnce:
    """Our run of every DAG in turn; `inner` is the mean makespan / critical path. With
    `spans`, each run also appends the mean of (last step end - first step start) / critical
    path: the schedule without the run's set-up and finish."""

    async def run_once(path: Path) -> Timing:
        ratios, total_wall, total_cpu, span = [], 0.0, 0.0, []
        for n, dag in enumerate(dags):
            workflow = AdvancedWorkflow.from_dict(dag_definition(dag))
            url = f"sqlite:///{path}.{n}"
            marks: list[float] = []
            async with EnterpriseWorkflowOrchestrator(
                registry=dag_registry(dag, marks), checkpointer=url
            ) as orch:
                timing, run = await timed(orch.execute_workflow(workflow, {}))
            if run.status.value != "completed":
                raise RuntimeError(f"DAG run ended {run.status.value}: {run.error}")
            ratios.append(timing.wall / dag.critical_path)
            span.append((max(marks) - min(marks)) / dag.critical_path)
        if spans is not None:
            spans.append(statistics.mean(span))
            total_wall, total_cpu = total_wall + timing.wall, total_cpu + timing.cpu
        return Timing(total_wall, total_cpu, inner=statistics.mean(ratios))

    return run_once


def raw_dags(dags: list[Dag]) -> RunOnce:
    """Raw LangGraph's run of every DAG in turn; `inner` as for ours."""

    async def run_once(path: Path) -> Timing:
        ratios, total_wall, total_cpu = [], 0.0, 0.0
        for n, dag in enumerate(dags):
            async with saver_for(Path(f"{path}.{n}"), "sqlite") as saver:
                graph = raw_dag(dag).compile(checkpointer=saver)
                config = {"configurable": {"thread_id": uuid.uuid4().hex}}
                timing, _ = await timed(graph.ainvoke({"done": []}, config))
            ratios.append(timing.wall / dag.critical_path)
            total_wall, total_cpu = total_wall + timing.wall, total_cpu + timing.cpu
        return Timing(total_wall, total_cpu, inner=statistics.mean(ratios))

    return run_once


# -- throughput ------------------------------------------------------------------------------


def commits_of(orch: EnterpriseWorkflowOrchestrator) -> int | None:
    """Checkpoint and audit transactions committed so far: our saver's shared commits plus
    the audit ledger's own; None when the saver does not count them (LangGraph's own)."""
    saver = orch._saver
    if not hasattr(saver, "commits"):
        return None
    return int(saver.commits) + LedgerDb.commits


def chain_definition(n: int) -> dict[str, Any]:
    """`n` noop steps in a chain."""
    return {
        "name": "bench-chain",
        "retry_policy": {"max_attempts": 1},
        "steps": [
            {"step_id": f"s{i}", "action": "noop", "dependencies": [f"s{i - 1}"] if i else []}
            for i in range(n)
        ],
    }


def noop_registry() -> ActionRegistry:
    """`noop` returns at once."""
    registry = ActionRegistry()

    @registry.action("noop")
    async def noop() -> dict[str, Any]:
        return {}

    return registry


def ours_concurrent(
    runs: int, steps: int, storage: str = "sqlite", pg_url: str | None = None
) -> RunOnce:
    """`runs` concurrent `execute_workflow` calls of a `steps`-step chain, one orchestrator."""
    workflow = AdvancedWorkflow.from_dict(chain_definition(steps))
    registry = noop_registry()

    async def run_once(path: Path) -> Timing:
        url = ours_url(storage, path, pg_url)
        async with EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=url) as orch:
            timing, results = await timed(
                asyncio.gather(*(orch.execute_workflow(workflow, {}) for _ in range(runs)))
            )
        if any(r.status.value != "completed" for r in results):
            raise RuntimeError("a concurrent benchmark run did not complete")
        return timing

    return run_once


def raw_concurrent(
    runs: int, steps: int, storage: str = "sqlite", pg_url: str | None = None
) -> RunOnce:
    """`runs` concurrent `ainvoke`s of a raw `steps`-node chain on one saver."""
    from bench._raw import raw_chain

    builder = raw_chain(steps)

    async def run_once(path: Path) -> Timing:
        async with raw_saver(storage, path, pg_url) as saver:
            graph = builder.compile(checkpointer=saver)

            async def one() -> Any:
                config = {"configurable": {"thread_id": uuid.uuid4().hex}}
                return await graph.ainvoke({"count": 0}, config)

            timing, _ = await timed(asyncio.gather(*(one() for _ in range(runs))))
        return timing

    return run_once


# -- parked runs (memory) --------------------------------------------------------------------


APPROVAL = {
    "name": "bench-parked",
    "steps": [
        {
            "step_id": "ask",
            "step_type": "human_approval",
            "approval": {"approvers": ["alice"]},
        }
    ],
}


async def _traced(work: Any) -> int:
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    await work
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def ours_parked(runs: int) -> RunOnce:
    """Python heap kept per run parked on an approval, in a long-lived orchestrator."""
    workflow = AdvancedWorkflow.from_dict(APPROVAL)

    async def run_once(path: Path) -> Timing:
        async with EnterpriseWorkflowOrchestrator(
            registry=noop_registry(), checkpointer=f"sqlite:///{path}"
        ) as orch:
            await orch.execute_workflow(workflow, {})  # first-use caches are not per run

            async def park() -> None:
                for _ in range(runs):
                    run = await orch.execute_workflow(workflow, {})
                    if run.status.value != "waiting_approval":
                        raise RuntimeError(f"parked run is {run.status.value}")

            tracemalloc.start()
            try:
                timing, grown = await timed(_traced(park()))
            finally:
                tracemalloc.stop()
        return Timing(timing.wall, timing.cpu, inner=grown / runs)

    return run_once


class AskState(TypedDict):
    """Raw parked state: the decision."""

    answer: str


def raw_parked(runs: int) -> RunOnce:
    """The same for raw LangGraph: a node calling `interrupt()`."""

    async def ask(_: AskState) -> dict[str, Any]:
        return {"answer": str(interrupt({"question": "approve?"}))}

    builder = StateGraph(AskState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)

    async def run_once(path: Path) -> Timing:
        async with saver_for(path, "sqlite") as saver:
            graph = builder.compile(checkpointer=saver)

            async def park() -> None:
                for _ in range(runs + 1):
                    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
                    await graph.ainvoke({"answer": ""}, config)

            await park()  # warm
            tracemalloc.start()
            try:
                timing, grown = await timed(_traced(park()))
            finally:
                tracemalloc.stop()
        return Timing(timing.wall, timing.cpu, inner=grown / runs)

    return run_once


# -- import time -----------------------------------------------------------------------------


def import_times(modules: list[str], repeats: int) -> dict[str, list[float]]:
    """CPU seconds (user + system) of a fresh interpreter importing each module, minus one
    that imports nothing, interleaved `repeats` times: CPU time, unlike wall time, hardly
    moves when other processes load the machine."""
    out: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(repeats):
        base = _child_cpu("pass")
        for module in modules:
            out[module].append(max(0.0, _child_cpu(f"import {module}") - base))
    return out


def _child_cpu(code: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def modules_loaded(module: str) -> int:
    """How many modules `import module` loads (deterministic, unlike its time)."""
    code = f"import sys;n=len(sys.modules);import {module};print(len(sys.modules)-n)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


# -- sequential chains on any storage --------------------------------------------------------


def ours_chain(steps: int, storage: str = "sqlite", pg_url: str | None = None) -> RunOnce:
    """A timed `execute_workflow` of a `steps`-step noop chain on `storage`."""
    workflow = AdvancedWorkflow.from_dict(chain_definition(steps))
    registry = noop_registry()

    async def run_once(path: Path) -> Timing:
        url = ours_url(storage, path, pg_url)
        async with EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=url) as orch:
            before = commits_of(orch)
            timing, run = await timed(orch.execute_workflow(workflow, {}))
            await asyncio.to_thread(orch.audit.ledger.flush)
            after = commits_of(orch)
            if before is not None and after is not None:
                timing = replace(timing, commits=after - before)
        if run.status.value != "completed":
            raise RuntimeError(f"benchmark run ended {run.status.value}: {run.error}")
        return timing

    return run_once


def raw_chain_on(steps: int, storage: str = "sqlite", pg_url: str | None = None) -> RunOnce:
    """A timed `ainvoke` of a raw `steps`-node chain on LangGraph's saver for `storage`."""
    from bench._raw import raw_chain

    builder = raw_chain(steps)

    async def run_once(path: Path) -> Timing:
        async with raw_saver(storage, path, pg_url) as saver:
            graph = builder.compile(checkpointer=saver)
            config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 10_000}
            timing, _ = await timed(graph.ainvoke({"count": 0}, config))
        return timing

    return run_once


@asynccontextmanager
async def postgres_database(admin_url: str | None) -> AsyncIterator[str | None]:
    """A fresh database for the run on the server of `admin_url`, dropped afterwards."""
    if not admin_url:
        yield None
        return
    from psycopg import AsyncConnection

    name = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = await AsyncConnection.connect(admin_url, autocommit=True)
    except Exception as exc:
        print(f"postgres skipped: cannot connect to {admin_url}: {exc}")
        yield None
        return
    await admin.execute(f"CREATE DATABASE {name}")
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
