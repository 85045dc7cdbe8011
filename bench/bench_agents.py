"""Agent benchmarks: what the agent machinery costs on top of the work it orchestrates.

Run from the repository root:

    python bench/bench_agents.py [--repeats 3]

Models are `ScriptedChatModel`s (no network), so the table shows our overhead only:

- `for_each` fan-out of 100 workers of 10 ms at `max_parallel_steps: 10` (one LangGraph task
  and one checkpoint write per worker, for durability) against a `parallel` container of the
  same 100 children (one task, no per-child durability): efficiency is ideal time / actual.
- a react step of 20 tool turns: wall time per model call, each under retry, timeout, circuit
  breaker and the token budget, against the bare `ainvoke` of the same model and tool.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator  # noqa: E402
from orchestrator.testing import ScriptedChatModel  # noqa: E402
from state import AdvancedWorkflow  # noqa: E402

WORKERS, LIMIT, WORK = 100, 10, 0.01
TURNS = 20


@tool
def noop(x: int) -> int:
    """Return x."""
    return x


def _registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("work")
    async def work(item: int = 0) -> int:
        await asyncio.sleep(WORK)
        return item

    registry.add_tool(noop)
    return registry


def _fanout() -> AdvancedWorkflow:
    step = {
        "step_id": "map",
        "action": "work",
        "for_each": "input.items",
        "max_subtasks": 1000,
        "input_mapping": {"item": "item"},
    }
    return AdvancedWorkflow.from_dict(
        {
            "name": "fan",
            "max_parallel_steps": LIMIT,
            "retry_policy": {"max_attempts": 1},
            "steps": [step],
        }
    )


def _container() -> AdvancedWorkflow:
    children = [
        {"step_id": f"c{i}", "step_type": "worker", "action": "work"} for i in range(WORKERS)
    ]
    return AdvancedWorkflow.from_dict(
        {
            "name": "par",
            "max_parallel_steps": LIMIT,
            "retry_policy": {"max_attempts": 1},
            "steps": [{"step_id": "p", "step_type": "parallel", "parallel_steps": children}],
        }
    )


def _script() -> list[Any]:
    call = AIMessage("", tool_calls=[{"name": "noop", "args": {"x": 1}, "id": "c"}])
    return [call] * TURNS + ["done"]


def _react() -> AdvancedWorkflow:
    step = {
        "step_id": "agent",
        "step_type": "react",
        "agent_capability": "llm",
        "tools": ["noop"],
        "max_iterations": TURNS + 1,
        "input_mapping": {"question": "input.q"},
    }
    return AdvancedWorkflow.from_dict({"name": "react", "steps": [step]})


async def _run(workflow: AdvancedWorkflow, registry: ActionRegistry, data: dict[str, Any]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        orch = EnterpriseWorkflowOrchestrator(
            registry=registry, checkpointer=f"sqlite:///{tmp}/b.sqlite"
        )
        try:
            started = time.perf_counter()
            run = await orch.execute_workflow(workflow, data)
            elapsed = time.perf_counter() - started
            assert run.status.value == "completed", run.error
            return elapsed
        finally:
            await orch.aclose()


async def _bare_react() -> float:
    model = ScriptedChatModel(script=_script())
    bound = model.bind_tools([noop])
    messages: list[Any] = [HumanMessage("go")]
    started = time.perf_counter()
    for _ in range(TURNS + 1):
        reply = await bound.ainvoke(messages)
        messages.append(reply)
        for call in reply.tool_calls:
            messages.append(ToolMessage(str(await noop.ainvoke(call["args"])), tool_call_id="c"))
    return time.perf_counter() - started


async def main(repeats: int) -> None:
    rows: dict[str, list[float]] = {"fanout": [], "container": [], "react": [], "bare": []}
    items = {"items": list(range(WORKERS))}
    await _run(_fanout(), _registry(), items)  # warm-up
    for _ in range(repeats):
        rows["fanout"].append(await _run(_fanout(), _registry(), items))
        rows["container"].append(await _run(_container(), _registry(), {}))
        registry = _registry()
        registry.add_agent("llm", ScriptedChatModel(script=_script()))
        rows["react"].append(await _run(_react(), registry, {"q": "go"}))
        rows["bare"].append(await _bare_react())
    ideal = WORKERS * WORK / LIMIT
    med = {k: statistics.median(v) for k, v in rows.items()}
    best = {k: min(v) for k, v in rows.items()}
    print("| benchmark | median (best) | result |\n|---|---|---|")
    for key, label in (
        ("fanout", f"for_each, {WORKERS} workers x {WORK * 1000:.0f} ms, limit {LIMIT}"),
        ("container", "parallel container, same work"),
    ):
        print(
            f"| {label} | {med[key]:.3f} s ({best[key]:.3f}) | efficiency "
            f"{ideal / med[key]:.2f} ({ideal / best[key]:.2f}) |"
        )
    calls = TURNS + 1
    per_call = (med["react"] - med["bare"]) / calls * 1000
    print(
        f"| react step, {TURNS} tool turns | {med['react']:.3f} s ({best['react']:.3f}) | "
        f"{med['react'] / calls * 1000:.1f} ms per model call, bare loop "
        f"{med['bare'] / calls * 1000:.1f} ms: +{per_call:.1f} ms per call |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeats))
