"""Per-step cost against run length: a 100-step chain next to a long one.

Run from the repository root:

    python bench/bench_chain_length.py                 # 100 vs 2000 steps, table
    python bench/bench_chain_length.py --long 5000     # another long chain
    python bench/bench_chain_length.py --profile       # also the top functions of the long run

The per-step cost of a sequential chain should not grow with the number of steps already
run: the table shows wall and CPU milliseconds per step for both lengths, and their ratio
(target: at most 1.2).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/bench_chain_length.py` works without an install

from bench.bench_core import bench_registry, sequential_definition  # noqa: E402
from orchestrator import EnterpriseWorkflowOrchestrator  # noqa: E402
from state import AdvancedWorkflow  # noqa: E402

TARGET = 1.2


async def _run(steps: int, profiler: cProfile.Profile | None = None) -> tuple[float, float]:
    workflow = AdvancedWorkflow.from_dict(sequential_definition(steps))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'runs.sqlite'}"
        async with EnterpriseWorkflowOrchestrator(registry=bench_registry(), checkpointer=url) as o:
            if profiler is not None:
                profiler.enable()
            wall, cpu = time.perf_counter(), time.process_time()
            run = await o.execute_workflow(workflow, {})
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if profiler is not None:
                profiler.disable()
    if run.status.value != "completed":
        raise RuntimeError(f"chain of {steps} ended {run.status.value}: {run.error}")
    return wall / steps * 1000, cpu / steps * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=100)
    parser.add_argument("--long", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    await _run(20)  # warm up imports and caches
    results: dict[int, list[tuple[float, float]]] = {args.short: [], args.long: []}
    for _ in range(args.repeats):
        for steps in results:
            results[steps].append(await _run(steps))
    best = {steps: (min(w for w, _ in r), min(c for _, c in r)) for steps, r in results.items()}
    print(f"| steps | wall ms/step (best of {args.repeats}) | CPU ms/step |")
    print("|---|---|---|")
    for steps, (wall, cpu) in best.items():
        print(f"| {steps} | {wall:.2f} | {cpu:.2f} |")
    ratio = best[args.long][1] / best[args.short][1]
    verdict = "ok" if ratio <= TARGET else "grows"
    print(
        f"\nCPU per step, {args.long} vs {args.short} steps: {ratio:.2f}x ({verdict}; target "
        f"<= {TARGET}x)"
    )
    if args.profile:
        profiler = cProfile.Profile()
        await _run(args.long, profiler)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())


if __name__ == "__main__":
    asyncio.run(main())
