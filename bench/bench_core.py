"""Core benchmarks: our orchestrator against raw LangGraph, side by side in one process.

Run from the repository root:

    python bench/bench_core.py            # main table, what-if table, two profiles
    python bench/bench_core.py --quick    # main table only, 2 repeats

Every run gets a fresh SQLite file opened the way `orchestrator._checkpointer` opens it (WAL,
busy_timeout), for both sides, so storage costs the same. Each benchmark runs once to warm up
(imports, schema caches, first connection) and then `--repeats` times, interleaved with the
others; tables show the median and, in brackets, the best. The machine may be shared, so the
best is the better estimate of the intrinsic cost and the median is what a user sees.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/bench_core.py` works without an install

from bench._measure import Rows, RunOnce, Sample, Timing, measure, row, saver_for, timed  # noqa: E402
from bench._profiling import CHILD_MARKERS, SEQ_MARKERS, async_router, profile, routed_by  # noqa: E402
from bench._raw import (  # noqa: E402
    plain_asyncio,
    raw,
    raw_chain,
    raw_fanout,
    raw_gather,
    raw_send_loop,
)
from bench._scenarios import (  # noqa: E402
    commits_of,
    import_times,
    modules_loaded,
    ours_chain,
    ours_concurrent,
    ours_dags,
    ours_parked,
    postgres_database,
    random_dag,
    raw_chain_on,
    raw_concurrent,
    raw_dags,
    raw_parked,
)
from nodes import RunServices  # noqa: E402
from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator, build_graph  # noqa: E402
from state import AdvancedWorkflow  # noqa: E402

SEQ_STEPS = 100
PAR_WORKERS = 200
PAR_LIMIT = 10
WORK_SECONDS = 0.01
IDEAL_PARALLEL = PAR_WORKERS * WORK_SECONDS / PAR_LIMIT
BIG_WORKERS, BIG_LIMIT = 2000, 50
DAG_STEPS, DAG_COUNT = 50, 3
TP_RUNS, TP_STEPS = 100, 5
PARKED = 50


def sequential_definition(n: int) -> dict[str, Any]:
    """A chain of `n` noop steps, each depending on the one before."""
    return {
        "name": "bench",
        "retry_policy": {"max_attempts": 1},
        "max_parallel_steps": 10,
        "steps": [
            {"step_id": f"s{i}", "action": "noop", "dependencies": [f"s{i - 1}"] if i else []}
            for i in range(n)
        ],
    }


def container_definition(n: int, limit: int) -> dict[str, Any]:
    """One parallel container of `n` sleeping children, `limit` at a time."""
    return {
        "name": "bench-parallel",
        "retry_policy": {"max_attempts": 1},
        "max_parallel_steps": limit,
        "steps": [
            {
                "step_id": "fan",
                "step_type": "parallel",
                "parallel_steps": [{"step_id": f"w{i}", "action": "sleep"} for i in range(n)],
            }
        ],
    }


def flat_definition(n: int, limit: int) -> dict[str, Any]:
    """`n` independent top-level sleeping steps, `limit` at a time."""
    return {
        "name": "bench-flat",
        "retry_policy": {"max_attempts": 1},
        "max_parallel_steps": limit,
        "steps": [{"step_id": f"w{i}", "action": "sleep"} for i in range(n)],
    }


def bench_registry() -> ActionRegistry:
    """`noop` returns at once; `sleep` waits WORK_SECONDS."""
    registry = ActionRegistry()

    @registry.action("noop")
    async def noop() -> dict[str, Any]:
        return {}

    @registry.action("sleep")
    async def sleep() -> dict[str, Any]:
        await asyncio.sleep(WORK_SECONDS)
        return {}

    return registry


def ours(
    definition: dict[str, Any],
    *,
    container: str | None = None,
    profiler: cProfile.Profile | None = None,
) -> RunOnce:
    """A timed `execute_workflow` (what a user calls: facade state reads included)."""
    workflow = AdvancedWorkflow.from_dict(definition)
    registry = bench_registry()

    async def run_once(path: Path) -> Timing:
        orch = EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=f"sqlite:///{path}")
        async with orch:  # the connection opens before the clock starts, as for raw
            before = commits_of(orch)
            if profiler is not None:
                profiler.enable()
            timing, run = await timed(orch.execute_workflow(workflow, {}))
            if profiler is not None:
                profiler.disable()
            await asyncio.to_thread(orch.audit.ledger.flush)
            after = commits_of(orch)
            if before is not None and after is not None:
                timing = replace(timing, commits=after - before)
        if run.status.value != "completed":
            raise RuntimeError(f"benchmark run ended {run.status.value}: {run.error}")
        if container is not None:
            return replace(timing, inner=float(run.step_results[container]["duration_seconds"]))
        return timing

    return run_once


def ours_graph(
    definition: dict[str, Any],
    *,
    storage: str = "sqlite",
    durability: str = "async",
    use_async_router: bool = False,
) -> RunOnce:
    """A timed `ainvoke` of our compiled graph alone (no facade reads), under a what-if."""
    workflow = AdvancedWorkflow.from_dict(definition)
    services = RunServices(actions=bench_registry())
    payload = {"workflow": workflow.to_data(), "context": {}}

    async def run_once(path: Path) -> Timing:
        async with saver_for(path, storage) as saver:
            with routed_by(async_router if use_async_router else None):
                graph = build_graph(saver)
            config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 10_000}
            timing, _ = await timed(
                graph.ainvoke(payload, config, context=services, durability=durability)
            )
            return timing

    return run_once


def ours_graph_hooked(definition: dict[str, Any]) -> RunOnce:
    """A timed `ainvoke` of our graph with the orchestrator's own hooks (metrics, audit
    ledger), without `execute_workflow`'s run index and state reads."""
    workflow = AdvancedWorkflow.from_dict(definition)
    registry = bench_registry()
    payload = {"workflow": workflow.to_data(), "context": {}}

    async def run_once(path: Path) -> Timing:
        url = f"sqlite:///{path}"
        async with EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=url) as orch:
            services = RunServices(actions=registry, hooks=orch.hooks)
            config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 10_000}
            timing, _ = await timed(orch.graph.ainvoke(payload, config, context=services))
        return timing

    return run_once


def per_step(sample: Sample, steps: int = SEQ_STEPS) -> str:
    """`median (best)` milliseconds per step."""
    return f"{sample.median / steps * 1e3:.2f} ({sample.best / steps * 1e3:.2f})"


def cpu_per_step(sample: Sample, steps: int = SEQ_STEPS) -> str:
    """`median (best)` CPU milliseconds per step."""
    return (
        f"{statistics.median(sample.cpu) / steps * 1e3:.2f} ({min(sample.cpu) / steps * 1e3:.2f})"
    )


def paired(ours_runs: list[float], raw_runs: list[float]) -> str:
    """Median of per-round ratios (best over best): interleaved rounds saw the same load."""
    ratio = statistics.median(o / r for o, r in zip(ours_runs, raw_runs, strict=True))
    return f"{ratio:.2f}x ({min(ours_runs) / min(raw_runs):.2f}x)"


def secs(values: list[float]) -> str:
    """`median (best)` seconds."""
    return f"{statistics.median(values):.3f} ({min(values):.3f})"


def efficiency(values: list[float]) -> str:
    """`median (best)` of ideal / measured."""
    return f"{IDEAL_PARALLEL / statistics.median(values):.3f} ({IDEAL_PARALLEL / min(values):.3f})"


def rows_cell(rows: Rows, steps: int) -> str:
    """Checkpoints / write rows / commits, per step."""
    return (
        f"{rows.checkpoints / steps:.2f} / {rows.writes / steps:.2f} / {rows.commits / steps:.2f}"
    )


async def seq_table(repeats: int, pg_url: str | None, big: bool) -> None:
    """The sequential figures only (`--only seq`): 10, 100 and 1,000 steps on SQLite, 100 on
    InMemorySaver and Postgres, ours beside raw LangGraph in the same rounds."""
    runs: dict[str, RunOnce] = {
        "ours_seq": ours_chain(SEQ_STEPS),
        "raw_seq": raw_chain_on(SEQ_STEPS),
        "ours_seq10": ours_chain(10),
        "raw_seq10": raw_chain_on(10),
        "ours_mem": ours_chain(SEQ_STEPS, "memory"),
        "raw_mem": raw_chain_on(SEQ_STEPS, "memory"),
    }
    if pg_url is not None:
        runs |= {
            "ours_pg": ours_chain(SEQ_STEPS, "postgres", pg_url),
            "raw_pg": raw_chain_on(SEQ_STEPS, "postgres", pg_url),
        }
    s = await measure(runs, repeats)
    if big:
        s |= await measure(
            {"ours_seq1000": ours_chain(1000), "raw_seq1000": raw_chain_on(1000)},
            max(1, repeats // 2),
        )
    print(
        f"\nmedian (best) of {repeats} interleaved runs after 1 warm-up, fresh SQLite file (WAL)"
        f" per run, {os.cpu_count()} cores; ratios: median of per-round ratios (best over best)"
    )
    print(row("benchmark", "ours", "raw LangGraph", "ratio"))
    seq_rows(s, "ours_seq10", "raw_seq10", 10, "10-step sequential, SQLite")
    seq_rows(s, "ours_seq", "raw_seq", SEQ_STEPS, f"{SEQ_STEPS}-step sequential, SQLite")
    print(
        row(
            "  per step: checkpoints / write rows / commits",
            rows_cell(s["ours_seq"].rows, SEQ_STEPS),
            rows_cell(s["raw_seq"].rows, SEQ_STEPS),
            "ours: commits counted (checkpoint + writes + audit)",
        )
    )
    print(
        row(
            "  per step: audit ledger entries",
            f"{s['ours_seq'].rows.audit_entries / SEQ_STEPS:.2f}",
            "-",
        )
    )
    if "ours_seq1000" in s:
        seq_rows(s, "ours_seq1000", "raw_seq1000", 1000, "1000-step sequential, SQLite")
    seq_rows(s, "ours_mem", "raw_mem", SEQ_STEPS, f"{SEQ_STEPS}-step sequential, InMemorySaver")
    if "ours_pg" in s:
        seq_rows(s, "ours_pg", "raw_pg", SEQ_STEPS, f"{SEQ_STEPS}-step sequential, Postgres")


GROUPS = {
    "seq": ("ours_seq", "raw_seq", "raw_send", "ours_seq10", "raw_seq10", "ours_mem", "raw_mem"),
    "container": ("ours_fan", "raw_gather", "asyncio", "ours_fan_big", "asyncio_big"),
    "flat": ("ours_flat", "raw_flat"),
    "dag": ("ours_dag", "raw_dag"),
    "throughput": ("ours_tp", "raw_tp"),
    "parked": ("ours_parked", "raw_parked"),
    "import": (),
}
"""`--only` groups: the benchmarks each one runs."""


async def main_table(
    repeats: int, pg_url: str | None, big: bool, only: frozenset[str] = frozenset()
) -> None:
    """Every figure of the issue, ours beside the reference measured in the same rounds."""
    seq = sequential_definition(SEQ_STEPS)
    dags = [random_dag(DAG_STEPS, seed) for seed in range(DAG_COUNT)]
    dag_spans: list[float] = []
    runs: dict[str, RunOnce] = {
        "ours_seq": ours(seq),
        "raw_seq": raw(raw_chain(SEQ_STEPS), {"count": 0}),
        "raw_send": raw(raw_send_loop(SEQ_STEPS), {"done": 0}),
        "ours_seq10": ours_chain(10),
        "raw_seq10": raw_chain_on(10),
        "ours_mem": ours_chain(SEQ_STEPS, "memory"),
        "raw_mem": raw_chain_on(SEQ_STEPS, "memory"),
        "ours_fan": ours(container_definition(PAR_WORKERS, PAR_LIMIT), container="fan"),
        "raw_gather": raw(raw_gather(PAR_WORKERS, PAR_LIMIT, WORK_SECONDS), {"done": []}),
        "asyncio": plain_asyncio(PAR_WORKERS, PAR_LIMIT, WORK_SECONDS),
        "ours_fan_big": ours(container_definition(BIG_WORKERS, BIG_LIMIT), container="fan"),
        "asyncio_big": plain_asyncio(BIG_WORKERS, BIG_LIMIT, WORK_SECONDS),
        "ours_flat": ours(flat_definition(PAR_WORKERS, PAR_LIMIT)),
        "raw_flat": raw(
            raw_fanout(PAR_WORKERS, WORK_SECONDS), {"done": []}, max_concurrency=PAR_LIMIT
        ),
        "ours_dag": ours_dags(dags, dag_spans),
        "raw_dag": raw_dags(dags),
        "ours_tp": ours_concurrent(TP_RUNS, TP_STEPS),
        "raw_tp": raw_concurrent(TP_RUNS, TP_STEPS),
        "ours_parked": ours_parked(PARKED),
        "raw_parked": raw_parked(PARKED),
    }
    if only:
        runs = {k: v for k, v in runs.items() if any(k in GROUPS[g] for g in only)}
    if pg_url is not None and not only:
        runs |= {
            "ours_pg": ours_chain(SEQ_STEPS, "postgres", pg_url),
            "raw_pg": raw_chain_on(SEQ_STEPS, "postgres", pg_url),
            "ours_tp_pg": ours_concurrent(TP_RUNS, TP_STEPS, "postgres", pg_url),
            "raw_tp_pg": raw_concurrent(TP_RUNS, TP_STEPS, "postgres", pg_url),
        }
    s = await measure(runs, repeats) if runs else {}
    if big and not only:  # 1,000 steps: fewer rounds, they take a while on a loaded machine
        s |= await measure(
            {"ours_seq1000": ours_chain(1000), "raw_seq1000": raw_chain_on(1000)},
            max(1, repeats // 2),
        )
    imports = (
        import_times(["langgraph", "langgraph.graph", "orchestrator"], max(3, repeats))
        if not only or "import" in only
        else {}
    )
    print(
        f"\nmedian (best) of {repeats} interleaved runs after 1 warm-up, fresh SQLite file (WAL)"
        f" per run, {os.cpu_count()} cores; ratios: median of per-round ratios (best over best)"
    )
    print(row("benchmark", "ours", "raw LangGraph", "ratio / efficiency"))
    if "ours_seq" in s:
        seq_rows(s, "ours_seq", "raw_seq", SEQ_STEPS, f"{SEQ_STEPS}-step sequential, SQLite")
        print(
            row(
                "  raw in our shape (router -Send-> work)",
                "",
                per_step(s["raw_send"]),
                f"ours / this: {paired(s['ours_seq'].times, s['raw_send'].times)}",
            )
        )
        print(
            row(
                "  per step: checkpoints / write rows / commits",
                rows_cell(s["ours_seq"].rows, SEQ_STEPS),
                rows_cell(s["raw_seq"].rows, SEQ_STEPS),
                f"our shape: {rows_cell(s['raw_send'].rows, SEQ_STEPS)}",
            )
        )
        print(
            row(
                "  per step: checkpoint / write bytes",
                f"{s['ours_seq'].rows.checkpoint_bytes // SEQ_STEPS} / "
                f"{s['ours_seq'].rows.write_bytes // SEQ_STEPS}",
                f"{s['raw_seq'].rows.checkpoint_bytes // SEQ_STEPS} / "
                f"{s['raw_seq'].rows.write_bytes // SEQ_STEPS}",
                f"our shape: {s['raw_send'].rows.checkpoint_bytes // SEQ_STEPS} / "
                f"{s['raw_send'].rows.write_bytes // SEQ_STEPS}",
            )
        )
        print(
            row(
                "  per step: audit ledger entries (own commit)",
                f"{s['ours_seq'].rows.audit_entries / SEQ_STEPS:.2f}",
                "-",
            )
        )
        seq_rows(s, "ours_seq10", "raw_seq10", 10, "10-step sequential, SQLite")
        if "ours_seq1000" in s:
            seq_rows(s, "ours_seq1000", "raw_seq1000", 1000, "1000-step sequential, SQLite")
            print(
                row(
                    "  checkpoint bytes per step, 1000 vs 100 steps",
                    f"{s['ours_seq1000'].rows.checkpoint_bytes // 1000} vs "
                    f"{s['ours_seq'].rows.checkpoint_bytes // SEQ_STEPS}",
                    f"{s['raw_seq1000'].rows.checkpoint_bytes // 1000} vs "
                    f"{s['raw_seq'].rows.checkpoint_bytes // SEQ_STEPS}",
                    "flat = no growth with run length",
                )
            )
        seq_rows(s, "ours_mem", "raw_mem", SEQ_STEPS, f"{SEQ_STEPS}-step sequential, InMemorySaver")
        if "ours_pg" in s:
            seq_rows(s, "ours_pg", "raw_pg", SEQ_STEPS, f"{SEQ_STEPS}-step sequential, Postgres")
    if "ours_fan" in s:
        container = s["ours_fan"].inner
        floor = s["asyncio"].times
        print(
            row(
                f"{PAR_WORKERS} x {WORK_SECONDS * 1e3:.0f} ms, 1 container @{PAR_LIMIT}: step, s",
                secs(container),
                secs(s["raw_gather"].times),
                f"{efficiency(container)}; of floor {paired(floor, container)}; target >= 0.95",
            )
        )
        print(
            row(
                "  whole run (set-up included), s",
                secs(s["ours_fan"].times),
                "",
                f"{efficiency(s['ours_fan'].times)}; of floor {paired(floor, s['ours_fan'].times)}",
            )
        )
        print(
            row(
                "  plain asyncio gather + Semaphore (floor), s",
                "",
                secs(floor),
                efficiency(floor),
            )
        )
        big_ideal = BIG_WORKERS * WORK_SECONDS / BIG_LIMIT
        big_inner = s["ours_fan_big"].inner
        print(
            row(
                f"{BIG_WORKERS} x {WORK_SECONDS * 1e3:.0f} ms, 1 container @{BIG_LIMIT}: step, s",
                secs(big_inner),
                f"floor {secs(s['asyncio_big'].times)}",
                f"{big_ideal / statistics.median(big_inner):.3f}; of floor "
                f"{paired(s['asyncio_big'].times, big_inner)}; whole run "
                f"{big_ideal / statistics.median(s['ours_fan_big'].times):.3f}",
            )
        )
    if "ours_flat" in s:
        print(
            row(
                f"{PAR_WORKERS} top-level steps @{PAR_LIMIT}: whole run, s",
                secs(s["ours_flat"].times),
                secs(s["raw_flat"].times),
                f"{efficiency(s['ours_flat'].times)}; raw {efficiency(s['raw_flat'].times)}"
                "; target >= 0.90",
            )
        )
        print(
            row(
                "  CPU ms per step (whole process, all threads)",
                cpu_per_step(s["ours_flat"], PAR_WORKERS),
                cpu_per_step(s["raw_flat"], PAR_WORKERS),
                f"one core keeps up with the {PAR_LIMIT} slots only below "
                f"{WORK_SECONDS * 1e3 / PAR_LIMIT:.1f} ms",
            )
        )
        print(
            row(
                "  per run: checkpoints / write rows / commits",
                f"{s['ours_flat'].rows.checkpoints} / {s['ours_flat'].rows.writes} / "
                f"{s['ours_flat'].rows.commits}",
                f"{s['raw_flat'].rows.checkpoints} / {s['raw_flat'].rows.writes} / "
                f"{s['raw_flat'].rows.commits}",
            )
        )
    if "ours_dag" in s:
        print(
            row(
                f"{DAG_COUNT} DAGs x {DAG_STEPS} steps, 5-50 ms: makespan / crit. path",
                ratio_cell(s["ours_dag"].inner),
                ratio_cell(s["raw_dag"].inner),
                "target <= 1.05 (superstep barrier)",
            )
        )
        print(
            row(
                "  first step start to last step end / crit. path",
                ratio_cell(dag_spans[1:]),  # the warm-up run is left out
                "",
                "ours without the run's set-up and finish",
            )
        )
    for label, ours_key, raw_key in (
        ("SQLite", "ours_tp", "raw_tp"),
        ("Postgres", "ours_tp_pg", "raw_tp_pg"),
    ):
        if ours_key in s:
            print(
                row(
                    f"{TP_RUNS} concurrent {TP_STEPS}-step runs, {label}: runs/s",
                    rate(s[ours_key].times),
                    rate(s[raw_key].times),
                    f"ours / raw time: {paired(s[ours_key].times, s[raw_key].times)}",
                )
            )
    if "ours_parked" in s:
        print(
            row(
                "memory per parked (waiting) run, KiB",
                kib(s["ours_parked"].inner),
                kib(s["raw_parked"].inner),
                f"Python heap kept after parking {PARKED} runs (tracemalloc)",
            )
        )
    if imports:
        base = imports["langgraph.graph"]
        print(
            row(
                "import orchestrator, CPU ms (vs import langgraph.graph)",
                msecs(imports["orchestrator"]),
                msecs(base),
                f"{paired(imports['orchestrator'], base)}  target <= 1.2x; modules "
                f"{modules_loaded('orchestrator')} vs {modules_loaded('langgraph.graph')}",
            )
        )
        print(
            row(
                "  import langgraph (a namespace package), CPU ms",
                "",
                msecs(imports["langgraph"]),
                "imports nothing of LangGraph: not a meaningful reference",
            )
        )
    print(
        f"ideal parallel time {PAR_WORKERS} x {WORK_SECONDS} s / {PAR_LIMIT} = {IDEAL_PARALLEL} s;"
        f" raw top-level = {PAR_WORKERS} Sends in one superstep with max_concurrency={PAR_LIMIT};"
        " ours runs durability=sync, raw LangGraph its default (async)"
    )


def seq_rows(s: dict[str, Sample], ours_key: str, raw_key: str, steps: int, label: str) -> None:
    """Wall and CPU milliseconds per step, ours beside raw."""
    print(
        row(
            f"{label}, ms per step",
            per_step(s[ours_key], steps),
            per_step(s[raw_key], steps),
            f"{paired(s[ours_key].times, s[raw_key].times)}  target <= 1.0x",
        )
    )
    print(
        row(
            "  CPU ms per step (whole process, all threads)",
            cpu_per_step(s[ours_key], steps),
            cpu_per_step(s[raw_key], steps),
            paired(s[ours_key].cpu, s[raw_key].cpu),
        )
    )


def ratio_cell(values: list[float]) -> str:
    """`median (best)` of a ratio."""
    return f"{statistics.median(values):.2f} ({min(values):.2f})"


def rate(times: list[float]) -> str:
    """`median (best)` runs per second of a batch of TP_RUNS runs."""
    return f"{TP_RUNS / statistics.median(times):.0f} ({TP_RUNS / min(times):.0f})"


def kib(values: list[float]) -> str:
    """`median (best)` KiB."""
    return f"{statistics.median(values) / 1024:.1f} ({min(values) / 1024:.1f})"


def msecs(values: list[float]) -> str:
    """`median (best)` milliseconds."""
    return f"{statistics.median(values) * 1e3:.0f} ({min(values) * 1e3:.0f})"


async def what_if_table(repeats: int) -> None:
    """The sequential benchmark again with one cost taken away at a time.

    Every row is measured afresh in one interleaved batch, so rows compare with each other
    (not with the main table, which ran at another moment). Ratios are paired against the
    row's baseline: `ours: graph.ainvoke` for ours, `raw chain` for raw.
    """
    seq = sequential_definition(SEQ_STEPS)
    chain = raw_chain(SEQ_STEPS)
    ours_base, raw_base = "ours: graph.ainvoke (no facade)", "raw chain"
    variants: dict[str, RunOnce] = {
        "ours: execute_workflow": ours(seq),
        "ours: graph + orchestrator hooks (audit...)": ours_graph_hooked(seq),
        ours_base: ours_graph(seq),
        "ours: graph, durability=sync": ours_graph(seq, durability="sync"),
        "ours: graph, durability=exit": ours_graph(seq, durability="exit"),
        "ours: graph, InMemorySaver": ours_graph(seq, storage="memory"),
        "ours: graph, PRAGMA synchronous=NORMAL": ours_graph(seq, storage="sqlite-normal"),
        "ours: graph, async routing function": ours_graph(seq, use_async_router=True),
        "ours: graph, async routing + sync=NORMAL": ours_graph(
            seq, use_async_router=True, storage="sqlite-normal"
        ),
        raw_base: raw(chain, {"count": 0}),
        "raw chain, durability=exit": raw(chain, {"count": 0}, durability="exit"),
        "raw chain, InMemorySaver": raw(chain, {"count": 0}, storage="memory"),
        "raw chain, PRAGMA synchronous=NORMAL": raw(chain, {"count": 0}, storage="sqlite-normal"),
        "raw chain, from_conn_string (no WAL)": raw(chain, {"count": 0}, storage="sqlite-default"),
        "raw our shape (router -Send-> work)": raw(raw_send_loop(SEQ_STEPS), {"done": 0}),
        "raw our shape, InMemorySaver": raw(
            raw_send_loop(SEQ_STEPS), {"done": 0}, storage="memory"
        ),
        "raw our shape, async routing function": raw(
            raw_send_loop(SEQ_STEPS, async_route=True), {"done": 0}
        ),
    }
    s = await measure(variants, repeats)
    widths = (46, 16, 16, 22, 0)
    print(f"\nwhat-if: {SEQ_STEPS}-step sequential, median (best) of {repeats}, interleaved")
    print(
        row(
            "variant",
            "wall ms/step",
            "CPU ms/step",
            "wall vs baseline",
            "ckpt / rows / commits per step",
            widths=widths,
        )
    )
    for label, sample in s.items():
        base = s[ours_base if label.startswith("ours") else raw_base]
        print(
            row(
                label,
                per_step(sample),
                cpu_per_step(sample),
                paired(sample.times, base.times),
                rows_cell(sample.rows, SEQ_STEPS),
                widths=widths,
            )
        )


def revision() -> str:
    """The commit measured (uncommitted changes in the work tree are measured too)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def load() -> str:
    """The 1, 5 and 15 minute load averages: other processes skew timings on a shared box."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def amain(argv: list[str] | None = None) -> None:
    """Run the benchmarks and print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="main table only, 2 repeats")
    parser.add_argument("--repeats", type=int, help="measured runs per benchmark (default 5)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a Postgres server to create (and drop) a benchmark database on; '' skips it",
    )
    parser.add_argument("--no-1000", action="store_true", help="skip the 1,000-step chains")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated groups of the main table to run ({', '.join(GROUPS)}); "
        "implies --quick and skips Postgres and the 1,000-step chains",
    )
    args = parser.parse_args(argv)
    only = frozenset(g for g in args.only.split(",") if g)
    if unknown := only - GROUPS.keys():
        parser.error(
            f"unknown --only group(s) {', '.join(sorted(unknown))}; use {', '.join(GROUPS)}"
        )
    args.quick = args.quick or bool(only)
    repeats = args.repeats or (2 if args.quick else 5)
    started = time.perf_counter()
    print(f"commit {revision()} (plus any uncommitted changes); load average: {load()}")
    async with postgres_database(
        args.pg or None if not only or only == {"seq"} else None
    ) as pg_url:
        if only == {"seq"}:  # the sequential figures with Postgres and 1,000 steps
            await seq_table(repeats, pg_url, big=not args.no_1000)
        else:
            await main_table(repeats, pg_url, big=not args.no_1000, only=only)
    if not args.quick:
        await what_if_table(repeats)
        await profile(
            f"one {SEQ_STEPS}-step sequential execute_workflow",
            lambda prof: ours(sequential_definition(SEQ_STEPS), profiler=prof),
            SEQ_STEPS,
            "step",
            SEQ_MARKERS,
        )
        await profile(
            f"one {PAR_WORKERS}-child container execute_workflow",
            lambda prof: ours(
                container_definition(PAR_WORKERS, PAR_LIMIT), container="fan", profiler=prof
            ),
            PAR_WORKERS,
            "child",
            CHILD_MARKERS,
        )
    print(f"\nbench finished in {time.perf_counter() - started:.1f} s; load average: {load()}")


if __name__ == "__main__":
    asyncio.run(amain())
