"""Where the time goes: cProfile summaries, and what-if swaps of our routing function.

cProfile sees the main thread only. SQLite runs in aiosqlite's thread (it shows as epoll
wait), and LangGraph runs sync routing functions in a worker thread, so ours is timed by a
wrapper instead.
"""

from __future__ import annotations

import cProfile
import functools
import inspect
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

import orchestrator._graph as graph_module
from bench._measure import RunOnce, row
from state import EnterpriseWorkflowState

ROOT = Path(__file__).resolve().parent.parent


def async_router(route: Callable[..., Any]) -> Callable[..., Any]:
    """`route` behind `async def`, so LangGraph calls it on the event loop.

    LangGraph runs a sync routing function through `run_in_executor`: one thread-pool hop
    per superstep, competing for the GIL with aiosqlite's thread.
    """

    async def determine_execution_path(
        state: EnterpriseWorkflowState, config: RunnableConfig
    ) -> Any:
        result = route(state, config)
        return await result if inspect.isawaitable(result) else result

    determine_execution_path.__annotations__ = {
        "state": EnterpriseWorkflowState,
        "config": RunnableConfig,
        "return": Any,
    }
    return determine_execution_path


@contextmanager
def routed_by(make: Callable[[Callable[..., Any]], Callable[..., Any]] | None) -> Iterator[None]:
    """Build graphs with our routing function wrapped by `make` (bench-only what-if)."""
    original = graph_module.determine_execution_path
    if make is not None:
        graph_module.determine_execution_path = make(original)
    try:
        yield
    finally:
        graph_module.determine_execution_path = original


_CATEGORIES = (
    (
        "our code (state, policies, nodes, orchestrator)",
        ("/state/", "/policies/", "/nodes/", "/orchestrator/"),
    ),
    ("pydantic", ("pydantic",)),
    ("checkpoint serde (jsonplus, msgpack)", ("checkpoint/serde",)),
    ("checkpoint sqlite saver + aiosqlite", ("checkpoint/sqlite", "aiosqlite")),
    ("checkpoint base, channels", ("checkpoint/base", "langgraph/channels")),
    ("langgraph pregel (loop, tasks, writes)", ("langgraph/",)),
    ("langchain_core (config, callbacks)", ("langchain_core",)),
    ("structlog, logging", ("structlog", "/logging/")),
    ("asyncio event loop, threads", ("/asyncio/", "/threading.py", "/concurrent/")),
)
_IDLE = "idle in epoll (waiting: sqlite thread, sleeps)"
_OTHER = "other (stdlib json, uuid, ..., site-packages)"


def _category(func: tuple[str, int, str]) -> str:
    filename, _, name = func
    if filename == "~":
        return _IDLE if "poll" in name or "select" in name else ""
    path = filename.replace(os.sep, "/")
    for label, needles in _CATEGORIES:
        if any(n in path for n in needles):
            return label
    return _OTHER


def categorise(stats: dict[Any, Any]) -> dict[str, float]:
    """Own time per category; a builtin's time goes to the categories of its callers."""
    totals: dict[str, float] = {}

    def add(label: str, seconds: float) -> None:
        totals[label or _OTHER] = totals.get(label or _OTHER, 0.0) + seconds

    for func, (_, _, tottime, _, callers) in stats.items():
        label = _category(func)
        if label or not callers:
            add(label, tottime)
            continue
        spread = sum(c[2] for c in callers.values()) or 1.0
        for caller, caller_stats in callers.items():
            add(_category(caller), tottime * caller_stats[2] / spread)
    return totals


def inclusive(stats: dict[Any, Any], file_part: str, name: str) -> tuple[int, float] | None:
    """`(calls, cumulative seconds)` of a function, or None when it does not exist."""
    found = None
    for (filename, _, fname), (_, ncalls, _, cumtime, _) in stats.items():
        if fname == name and file_part in filename.replace(os.sep, "/"):
            calls, cum = found or (0, 0.0)
            found = (calls + ncalls, cum + cumtime)
    return found


_SQLITE_SYNC = ("~", "<method 'execute' of 'sqlite3.Connection' objects>")

SEQ_MARKERS = (
    ("orchestrator node (scheduler + inline step)", "nodes/orchestrator.py", "orchestrator"),
    ("  plan (ready steps)", "nodes/_scheduler.py", "plan"),
    ("  _complexity (workflow size, for hooks)", "nodes/orchestrator.py", "_complexity"),
    ("  workflow_from_state (cache lookup)", "nodes/_definition.py", "workflow_from_state"),
    ("  build_task (StepTask payload)", "nodes/_task.py", "build_task"),
    ("parallel_executor (one step)", "nodes/parallel_executor.py", "parallel_executor"),
    ("  run_leaf (policies + action)", "nodes/_step_runner.py", "run_leaf"),
    ("    call_with_retry (action included)", "policies/_retry.py", "call_with_retry"),
    ("    step_logger (structlog bind)", "nodes/_services.py", "step_logger"),
    ("  step_from_data (fingerprint + cache)", "nodes/_definition.py", "step_from_data"),
    ("  outcome_update (StepResult dumps)", "nodes/_outcome.py", "outcome_update"),
    ("hooks fan-out (metrics, audit, SLA)", "nodes/_hooks.py", "fan_out"),
    ("  audit ledger append", "orchestrator/_audit.py", "append"),
    ("sqlite3 execute on the event loop (index, audit)", *_SQLITE_SYNC),
    ("facade: execute_workflow reads (_snapshot)", "orchestrator/_facade.py", "_snapshot"),
    ("pydantic BaseModel.__init__ (state, results)", "pydantic/main.py", "__init__"),
    ("pydantic model_validate", "pydantic/main.py", "model_validate"),
    ("saver.aput (one checkpoint)", "checkpoint/sqlite/aio.py", "aput"),
    ("saver.aput_writes (one task's writes)", "checkpoint/sqlite/aio.py", "aput_writes"),
    ("serde dumps_typed", "checkpoint/serde/jsonplus.py", "dumps_typed"),
    ("json.dumps (metadata, audit hashes, fingerprints)", "json/__init__.py", "dumps"),
)

CHILD_MARKERS = (
    ("run_parallel (whole container)", "nodes/_containers.py", "run_parallel"),
    ("run_leaf (one child)", "nodes/_step_runner.py", "run_leaf"),
    ("  policy_for (RetryPolicy merge)", "nodes/_step_runner.py", "policy_for"),
    ("  step_logger (structlog bind)", "nodes/_services.py", "step_logger"),
    ("  call_with_retry (action included)", "policies/_retry.py", "call_with_retry"),
    ("    tenacity AsyncRetrying.__call__", "tenacity/asyncio/__init__.py", "__call__"),
    ("  run_with_timeout", "policies/_timeouts.py", "run_with_timeout"),
    ("  ActionRegistry.invoke (bind signature)", "orchestrator/_registry.py", "invoke"),
    ("  to_plain (output to JSON-like)", "nodes/_plain.py", "to_plain"),
    ("hooks fan-out (metrics, audit, SLA)", "nodes/_hooks.py", "fan_out"),
    ("  audit ledger append", "orchestrator/_audit.py", "append"),
    ("sqlite3 execute on the event loop (index, audit)", *_SQLITE_SYNC),
    ("outcome_update (201 StepResults)", "nodes/_outcome.py", "outcome_update"),
    ("StepOutcome.result (StepResult build)", "nodes/_outcome.py", "result"),
)


class RouterClock:
    """Times our routing function, which LangGraph runs in a worker thread cProfile misses."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self.lock = threading.Lock()

    def wrap(self, route: Callable[..., Any]) -> Callable[..., Any]:
        """`route`, timed."""

        @functools.wraps(route)
        async def determine_execution_path(
            state: EnterpriseWorkflowState, config: RunnableConfig
        ) -> Any:
            start = time.perf_counter()
            try:
                result = route(state, config)
                return await result if inspect.isawaitable(result) else result
            finally:
                with self.lock:
                    self.calls += 1
                    self.seconds += time.perf_counter() - start

        determine_execution_path.__annotations__ = {
            "state": EnterpriseWorkflowState,
            "config": RunnableConfig,
            "return": Any,
        }
        return determine_execution_path


async def profile(
    title: str,
    make_run: Callable[[cProfile.Profile | None], RunOnce],
    units: int,
    unit: str,
    marks: tuple[tuple[str, str, str], ...],
) -> None:
    """cProfile one `execute_workflow` (after an unprofiled warm-up and an unprofiled timing)
    and summarise where the main thread spends its time."""
    clock = RouterClock()
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        await make_run(None)(Path(tmp) / "warm.sqlite")
        plain = await make_run(None)(Path(tmp) / "plain.sqlite")
        with routed_by(clock.wrap):
            wall = await make_run(profiler)(Path(tmp) / "prof.sqlite")
    plain_s, wall_s = plain.wall, wall.wall
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    totals = categorise(stats)
    profiled = sum(totals.values())
    per = 1e3 / units
    print(
        f"\nprofile: {title}: {wall_s * 1e3:.0f} ms under cProfile, {plain_s * 1e3:.0f} ms "
        f"without (x{wall_s / plain_s:.1f}: read shares, not absolute ms). Main thread only: "
        "SQLite runs in aiosqlite's thread and shows as epoll wait."
    )
    print(row("own time by category", "ms per run", f"ms per {unit}", "share"))
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(
            row(label, f"{seconds * 1e3:.1f}", f"{seconds * per:.3f}", f"{seconds / profiled:.0%}")
        )
    print(row("inclusive time (coroutine resumes count as calls)", "calls", f"ms per {unit}"))
    for label, file_part, name in marks:
        found = inclusive(stats, file_part, name)
        if found is None:
            print(row(label, "not called"))
        else:
            print(row(label, str(found[0]), f"{found[1] * per:.3f}"))
    print(
        row(
            "routing function (worker thread, timed)",
            str(clock.calls),
            f"{clock.seconds * per:.3f}",
        )
    )
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    lines = text.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("top 12 functions by own time:")
    for line in lines[first:]:
        if line.strip():
            shown = line.replace(str(ROOT) + os.sep, "").replace(sys.prefix + os.sep, "")
            print("  " + shown.replace(sys.base_prefix + os.sep, ""))
