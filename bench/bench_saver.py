"""Our group-commit saver against LangGraph's stock `AsyncSqliteSaver`, paired in one process.

Run from the repository root: `python bench/bench_saver.py [--repeats N]`.

The same orchestrator code runs the same chains twice per round: once on our saver (one commit
per step, audit entries in it) and once with the factory handing out LangGraph's
`AsyncSqliteSaver` (the previous storage path: checkpoint and writes committed apart, audit
entries in a transaction of their own), interleaved with a raw LangGraph chain. Only the saver
differs, so the per-round ratios isolate what the saver changed even on a loaded machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402

import orchestrator.storage._checkpointer as factory  # noqa: E402
from bench._measure import RunOnce, Sample, Timing, measure, row  # noqa: E402
from bench._scenarios import ours_chain, raw_chain_on  # noqa: E402


class _Stock(AsyncSqliteSaver):
    """LangGraph's saver, built the way the factory builds ours."""

    def __init__(self, conn: Any, *, serde: Any = None, path: Path | None = None) -> None:
        super().__init__(conn, serde=serde)
        self.path = path

    async def drain(self) -> None:
        """Nothing is queued."""


def stock(run: RunOnce) -> RunOnce:
    """`run` with the factory handing out LangGraph's saver instead of ours."""

    async def run_once(path: Path) -> Timing:
        ours = factory.GroupCommitSqliteSaver
        factory.GroupCommitSqliteSaver = _Stock  # type: ignore[misc,assignment]
        try:
            return await run(path)
        finally:
            factory.GroupCommitSqliteSaver = ours  # type: ignore[misc]

    return run_once


def cells(sample: Sample, steps: int) -> tuple[str, str]:
    """Wall and CPU ms per step, `median (best)`."""
    wall = f"{sample.median / steps * 1e3:.2f} ({sample.best / steps * 1e3:.2f})"
    cpu = f"{statistics.median(sample.cpu) / steps * 1e3:.2f} ({min(sample.cpu) / steps * 1e3:.2f})"
    return wall, cpu


def paired(a: list[float], b: list[float]) -> str:
    """Median of per-round ratios."""
    return f"{statistics.median(x / y for x, y in zip(a, b, strict=True)):.2f}x"


async def main(repeats: int) -> None:
    """Print the paired table."""
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(row("chain", "wall ms/step", "CPU ms/step", "commits/step", widths=(44, 18, 18, 0)))
    for steps in (10, 100, 1000):
        runs = {
            "group": ours_chain(steps),
            "stock": stock(ours_chain(steps)),
            "raw": raw_chain_on(steps),
        }
        s = await measure(runs, repeats if steps < 1000 else max(2, repeats // 3))
        for name, label in (
            ("group", "ours, group-commit saver"),
            ("stock", "ours, LangGraph's AsyncSqliteSaver"),
            ("raw", "raw LangGraph chain"),
        ):
            wall, cpu = cells(s[name], steps)
            commits = f"{s[name].rows.commits / steps:.2f}"
            if name == "stock":
                commits += " + audit 1.00"
            print(row(f"{steps:>4} steps: {label}", wall, cpu, commits, widths=(44, 18, 18, 0)))
        g, st, r = s["group"], s["stock"], s["raw"]
        print(
            f"{steps:>4} steps: group/stock wall {paired(g.times, st.times)} CPU "
            f"{paired(g.cpu, st.cpu)}; group/raw wall {paired(g.times, r.times)} CPU "
            f"{paired(g.cpu, r.cpu)}; stock/raw wall {paired(st.times, r.times)} CPU "
            f"{paired(st.cpu, r.cpu)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    asyncio.run(main(parser.parse_args().repeats))
