"""A process for the saver's crash tests: runs a small LangGraph graph on our saver.

Usage: `python saver_scene.py DB WORKDIR SCENE first|resume`. Every node appends its name to
`WORKDIR/effects.log` (the side effects the tests count). `first` runs the graph from its
input, and the scene kills this process with SIGKILL at its chosen point; `resume` continues
the same thread in a new process (`ainvoke(None)`) and prints the final state as JSON.

Scenes:
- `chain`: five nodes in a row; the first process dies at the start of `n3`.
- `sibling-fails`: `a` and `b` run in one superstep; `b` raises once `a` has finished; the
  first process dies right after `ainvoke` raises (no drain, no close).
- `sibling-killed`: as above, but `b` kills the process a moment after `a` finished.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import operator
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import aiosqlite
from langgraph.graph import END, START, StateGraph

from orchestrator.storage import GroupCommitSqliteSaver, serializer


class State(TypedDict):
    """The graph's state: the names of the nodes that ran."""

    done: Annotated[list[str], operator.add]


def _effect(work: Path, name: str) -> None:
    with (work / "effects.log").open("a", encoding="utf-8") as out:
        out.write(name + "\n")


def _effects(work: Path) -> list[str]:
    path = work / "effects.log"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def build(scene: str, work: Path, first: bool) -> StateGraph[Any]:
    """The scene's graph; `first` arms its kill point."""
    builder = StateGraph(State)

    def node(name: str) -> Any:
        async def run(state: State) -> dict[str, list[str]]:
            if first and scene == "chain" and name == "n3":
                os.kill(os.getpid(), signal.SIGKILL)
            if first and scene.startswith("sibling") and name == "b":
                while "a" not in _effects(work):
                    await asyncio.sleep(0.005)
                if scene == "sibling-killed":
                    await asyncio.sleep(0.2)  # a's task is over; its writes are saved
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("b failed")
            _effect(work, name)
            return {"done": [name]}

        return run

    if scene == "chain":
        names = [f"n{i}" for i in range(1, 6)]
        for name in names:
            builder.add_node(name, node(name))
        builder.add_edge(START, names[0])
        for before, after in itertools.pairwise(names):
            builder.add_edge(before, after)
        builder.add_edge(names[-1], END)
    else:
        for name in ("a", "b"):
            builder.add_node(name, node(name))
            builder.add_edge(START, name)
            builder.add_edge(name, END)
    return builder


async def main(db: str, work: Path, scene: str, phase: str) -> None:
    """Run the phase of the scene."""
    config: Any = {"configurable": {"thread_id": "T"}}
    async with aiosqlite.connect(db) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        saver = GroupCommitSqliteSaver(conn, serde=serializer(), path=Path(db))
        await saver.setup()
        graph = build(scene, work, phase == "first").compile(checkpointer=saver)
        if phase == "first":
            try:
                await graph.ainvoke({"done": []}, config, durability="sync")
            except RuntimeError:
                time.sleep(0)  # nothing more: the process dies as the error arrives
                os.kill(os.getpid(), signal.SIGKILL)
            return
        pending = (await saver.aget_tuple(config)) or None
        writes = [(t, c) for t, c, _ in (pending.pending_writes if pending else [])]
        final = await graph.ainvoke(None, config, durability="sync")
        await saver.drain()
    print(json.dumps({"final": final, "pending_before_resume": writes}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
