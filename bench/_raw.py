"""Raw LangGraph (and plain asyncio) baselines: the same work without our orchestrator."""

from __future__ import annotations

import asyncio
import operator
import uuid
from pathlib import Path
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from bench._measure import RunOnce, Timing, saver_for, timed


class ChainState(TypedDict):
    """State of the raw chain: one counter."""

    count: int


def raw_chain(n: int) -> StateGraph[Any]:
    """START -> n0 -> n1 -> ... -> n{n-1} -> END, every node an async increment."""

    async def step(state: ChainState) -> dict[str, Any]:
        return {"count": state["count"] + 1}

    builder = StateGraph(ChainState)
    for i in range(n):
        builder.add_node(f"n{i}", step)
        builder.add_edge(f"n{i - 1}" if i else START, f"n{i}")
    builder.add_edge(f"n{n - 1}", END)
    return builder


class LoopState(TypedDict):
    """State of the raw router loop: steps done."""

    done: int


class WorkTask(TypedDict):
    """Payload of one raw `Send`."""

    i: int


def raw_send_loop(n: int, *, async_route: bool = False) -> StateGraph[Any]:
    """Our shape in raw LangGraph: router -(Send)-> work -> router, n times (2 supersteps/step)."""

    async def router(_: LoopState) -> dict[str, Any]:
        return {}

    def route(state: LoopState) -> list[Send] | str:
        return [Send("work", {"i": state["done"]})] if state["done"] < n else END

    async def aroute(state: LoopState) -> list[Send] | str:
        return route(state)

    async def work(task: WorkTask) -> dict[str, Any]:
        return {"done": task["i"] + 1}

    builder = StateGraph(LoopState)
    builder.add_node("router", router)
    builder.add_node("work", work, input_schema=WorkTask)
    builder.add_edge(START, "router")
    builder.add_conditional_edges("router", aroute if async_route else route, ["work", END])
    builder.add_edge("work", "router")
    return builder


class FanState(TypedDict):
    """State of the raw fan-outs: ids of finished workers."""

    done: Annotated[list[int], operator.add]


def raw_fanout(n: int, work: float) -> StateGraph[Any]:
    """START -(n Sends)-> work -> END; run with `max_concurrency` to cap parallelism."""

    def fan(_: FanState) -> list[Send]:
        return [Send("work", {"i": i}) for i in range(n)]

    async def worker(task: WorkTask) -> dict[str, Any]:
        await asyncio.sleep(work)
        return {"done": [task["i"]]}

    builder = StateGraph(FanState)
    builder.add_node("work", worker, input_schema=WorkTask)
    builder.add_conditional_edges(START, fan, ["work"])
    builder.add_edge("work", END)
    return builder


async def gather_sleeps(n: int, limit: int, work: float) -> list[int]:
    """n sleeps under a Semaphore(limit): the floor for any parallel container."""
    gate = asyncio.Semaphore(limit)

    async def one(i: int) -> int:
        async with gate:
            await asyncio.sleep(work)
            return i

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def raw_gather(n: int, limit: int, work: float) -> StateGraph[Any]:
    """One node running `gather_sleeps`: what our container does, in raw LangGraph."""

    async def fan(_: FanState) -> dict[str, Any]:
        return {"done": await gather_sleeps(n, limit, work)}

    builder = StateGraph(FanState)
    builder.add_node("fan", fan)
    builder.add_edge(START, "fan")
    builder.add_edge("fan", END)
    return builder


def raw(
    builder: StateGraph[Any],
    initial: dict[str, Any],
    *,
    storage: str = "sqlite",
    durability: str = "async",
    max_concurrency: int | None = None,
) -> RunOnce:
    """A timed `ainvoke` of a raw graph compiled on a fresh saver."""

    async def run_once(path: Path) -> Timing:
        config: dict[str, Any] = {
            "configurable": {"thread_id": uuid.uuid4().hex},
            "recursion_limit": 10_000,
        }
        if max_concurrency is not None:
            config["max_concurrency"] = max_concurrency
        async with saver_for(path, storage) as saver:
            graph = builder.compile(checkpointer=saver)
            timing, _ = await timed(graph.ainvoke(initial, config, durability=durability))
            return timing

    return run_once


def plain_asyncio(n: int, limit: int, work: float) -> RunOnce:
    """`gather_sleeps` with no LangGraph at all."""

    async def run_once(_: Path) -> Timing:
        timing, _ = await timed(gather_sleeps(n, limit, work))
        return timing

    return run_once
