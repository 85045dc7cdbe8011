"""Dependency-driven scheduling of top-level action steps inside one task.

LangGraph runs supersteps: a step dispatched with `Send` starts only when every task of the
previous superstep ended, so one slow step holds up unrelated fast branches. When several
plain action steps (sequential, worker, webhook, parallel containers, loops) are ready at
once, the orchestrator sends them as one *DAG task* instead. It starts each step the moment
its own dependencies end, under `max_parallel_steps`, and keeps going with the steps they
unblock until none is left that it may run.

Durability comes from LangGraph itself: every step runs as a LangGraph task of its own
(`langgraph.func.task`, one name per step), whose return value LangGraph saves as a pending
write of the superstep the moment the step ends. After a crash the superstep runs again from
the same checkpoint: the DAG task issues the same calls in the same order (definition order,
so the same task ids), the calls of finished steps return their saved results without
running, and only the steps in flight run again, with the same idempotency keys.

Steps that need the scheduler between them stay out: approvals, conditionals, react steps,
fan-outs, rollback steps and rollback points, and any step waiting for one of them. A
failure, a pause or cancel request, the workflow timeout or the token budget stops the task
from starting more steps; the orchestrator then decides as it does after any superstep.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes._definition import workflow_from_state
from nodes._fanout import is_fanout, split_worker
from nodes._scheduler import Planner, handler_only, node_for, waits_for
from nodes._services import clock_of, control_of, hooks_of, max_tokens_of
from nodes._task import build_task
from state import AdvancedWorkflow, EnterpriseWorkflowState, StepType, WorkflowStep

DAG_KEY = "dag"
"""Key of a `StepTask` that runs a group of top-level steps as one DAG task."""

DAG_STEP = "dag_step"
"""Key that marks the saved result of one step of a DAG task (see `finished_in_flight`)."""

SCHEDULE_DAG = "orchestrator_schedule_dag"
"""Config key: run ready action steps as DAG tasks (the facade sets it)."""

VIEW_FIELDS = (
    "run_id",
    "workflow_id",
    "workflow_key",
    "input",
    "context",
    "intermediate_results",
    "started_monotonic",
    "rollback_count",
    "stored_bytes",
    "decided_at",
    "token_usage",
    "completed_steps",
    "failed_steps",
    "skipped_steps",
    "triggered_steps",
    "handled_failures",
)
"""State fields a DAG task needs to map its steps' inputs and decide what is ready."""


def runs_in_dag(step: WorkflowStep) -> bool:
    """True for a top-level step a DAG task may run: a plain action step or container."""
    return (
        node_for(step.step_type) == "parallel_executor"
        and not is_fanout(step)
        and step.step_type is not StepType.ROLLBACK
        and not step.rollback_point
    )


def dag_enabled(config: Any) -> bool:
    """True when the run asked for DAG tasks and LangGraph does not cap its tasks (a
    `max_concurrency` would make the steps' own tasks queue behind the DAG task's slot)."""
    if not isinstance(config, dict):
        return False
    return bool(config.get("configurable", {}).get(SCHEDULE_DAG)) and not config.get(
        "max_concurrency"
    )


def dag_group(workflow: AdvancedWorkflow, ready: list[str]) -> list[str]:
    """The ready steps that go out as one DAG task (empty when fewer than two qualify)."""
    group = [sid for sid in ready if split_worker(sid) is None and runs_in_dag(workflow.step(sid))]
    return group if len(group) > 1 else []


def dag_task(state: EnterpriseWorkflowState, ids: list[str], slots: int) -> dict[str, Any]:
    """The payload of the `Send` that runs `ids` (and what they unblock) as one task."""
    view = {name: getattr(state, name) for name in VIEW_FIELDS}
    return {
        "step_id": ids[0],
        "run_id": state.run_id,
        "workflow_id": state.workflow_id,
        DAG_KEY: {
            "ids": list(ids),
            "slots": max(1, slots),
            "workflow": state.workflow,
            "state": view,
        },
    }


class _StepCalls:
    """Holds the function of each step name, so that LangGraph finds it by module and
    qualified name and caches its runnable (it rebuilds the runnable of any function it
    cannot find, at about a millisecond a call)."""


_STEP_CALLS = _StepCalls()


@functools.lru_cache(maxsize=4096)
def _step_call(sid: str) -> Any:
    """The LangGraph task that runs step `sid` of a DAG task (its name is part of the task
    id, so a saved result can only ever answer for the same step)."""
    name = f"dag_step_{sid}"
    if not re.fullmatch(r"[A-Za-z0-9_]+", sid):  # `#`-free, and apart from plain ids
        name = f"dag_hashed_{hashlib.sha256(sid.encode()).hexdigest()[:16]}"

    async def run_step(job: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        return await job()

    from langgraph.func import task as langgraph_task  # loaded with the first DAG task

    run_step.__module__ = __name__
    run_step.__qualname__ = f"_STEP_CALLS.{name}"
    setattr(_STEP_CALLS, name, run_step)
    return langgraph_task(name=name)(cast(Any, run_step))


def _candidates(workflow: AdvancedWorkflow, done: set[str], triggered: set[str]) -> list[str]:
    """Steps the DAG task may run, in definition order: not done, runnable in a DAG task,
    and not waiting (directly or through other steps) for a step it may not run."""
    waits = waits_for(workflow)
    handlers = handler_only(workflow) - triggered
    dependents: dict[str, list[str]] = {}
    for sid, deps in waits.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(sid)
    blocked: list[str] = [
        s.step_id
        for s in workflow.steps
        if s.step_id not in done and (s.step_id in handlers or not runs_in_dag(s))
    ]
    out: set[str] = set(blocked)
    while blocked:  # whatever waits for a blocked step is blocked too
        for later in dependents.get(blocked.pop(), ()):
            if later not in out and later not in done:
                out.add(later)
                blocked.append(later)
    return [s.step_id for s in workflow.steps if s.step_id not in done and s.step_id not in out]


async def run_dag(
    task: dict[str, Any],
    runtime: Runtime[Any],
    execute: Callable[[Any, WorkflowStep, Runtime[Any]], Awaitable[dict[str, Any]]],
) -> Any:
    """Run the DAG task's steps, each as soon as its dependencies ended; returns one state
    update per step that ran, in the order they finished."""
    spec = task[DAG_KEY]
    data = dict(spec["state"])
    workflow = workflow_from_state(spec["workflow"], data.get("workflow_key") or None)
    view = EnterpriseWorkflowState.model_construct(**data)
    completed = set(data["completed_steps"])
    failed = set(data["failed_steps"])
    skipped = set(data["skipped_steps"])
    triggered = set(data["triggered_steps"])
    handled = set(data["handled_failures"])
    context = dict(data["context"])
    results = dict(data["intermediate_results"])
    stored = [int(data.get("stored_bytes") or 0)]
    tokens = [int((data.get("token_usage") or {}).get("total_tokens") or 0)]
    budget = workflow.sla_targets.max_tokens or max_tokens_of(runtime)
    clock, control = clock_of(runtime), control_of(runtime)
    run_id = str(data["run_id"])
    started = data.get("started_monotonic")
    deadline = started + workflow.timeout if workflow.timeout and started is not None else None
    gate = asyncio.Semaphore(int(spec["slots"]))
    order = _candidates(workflow, completed | failed | skipped | handled, triggered)
    go: dict[str, asyncio.Future[bool]] = {sid: asyncio.Future() for sid in order}
    stop: list[str] = []

    def must_stop() -> bool:
        if stop:
            return True
        if deadline is not None and clock() >= deadline:
            stop.append("timeout")
        elif budget is not None and tokens[0] > budget:
            stop.append("budget")
        elif control(run_id):
            stop.append("control")
        return bool(stop)

    async def job(sid: str) -> dict[str, Any]:
        if not await go[sid]:
            return {DAG_STEP: sid, "ran": False}
        async with gate:
            if must_stop():
                return {DAG_STEP: sid, "ran": False}
            step = workflow.step(sid)
            state = view.model_copy(
                update={
                    "context": dict(context),
                    "intermediate_results": results,
                    "stored_bytes": stored[0],
                }
            )
            update = await execute(build_task(state, workflow, step), step, runtime)
        update.pop("audit_head", None)
        return {DAG_STEP: sid, "ran": True, "at": clock(), "update": update}

    calls = {sid: _step_call(sid)(functools.partial(job, sid)) for sid in order}
    pending: set[Any] = set(calls.values())
    sid_of = {id(fut): sid for sid, fut in calls.items()}
    running: set[str] = set()
    finished: list[tuple[float, int, dict[str, Any]]] = []

    planner = Planner(workflow)
    planner.add(
        completed=completed,
        failed=failed,
        skipped=skipped,
        handled=handled,
        triggered=triggered,
    )

    def start_ready() -> None:
        if stop or (failed - handled) or must_stop():
            return
        decision = planner.decide(in_flight=running, cap=False)
        for sid in decision.ready:
            if sid in go and not go[sid].done():
                running.add(sid)
                go[sid].set_result(True)

    start_ready()
    while pending:
        if not running and not (stop or (failed - handled)):
            start_ready()
        if not running:
            for fut in go.values():
                if not fut.done():
                    fut.set_result(False)
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for fut in done:
            saved = fut.result()  # a bug in a step's bookkeeping fails the task loudly
            sid = sid_of[id(fut)]
            running.discard(sid)
            if not go[sid].done():
                go[sid].set_result(False)  # answered from a saved result: never start it
            if not saved.get("ran"):
                continue
            update = saved["update"]
            # saved results of an earlier attempt come first: they finished earlier
            finished.append((float(saved.get("at") or 0.0), len(finished), update))
            _fold(update, completed, failed, skipped, context, results)
            planner.add(
                completed=update.get("completed_steps", ()),
                failed=update.get("failed_steps", ()),
                skipped=update.get("skipped_steps", ()),
            )
            stored[0] += int(update.get("stored_bytes") or 0)
            tokens[0] += int((update.get("token_usage") or {}).get("total_tokens") or 0)
        start_ready()
    return _updates(finished, hooks_of(runtime).head(run_id))


def _fold(
    update: dict[str, Any],
    completed: set[str],
    failed: set[str],
    skipped: set[str],
    context: dict[str, Any],
    results: dict[str, Any],
) -> None:
    """Take a finished step's update into what the DAG task knows."""
    completed.update(update.get("completed_steps", ()))
    failed.update(update.get("failed_steps", ()))
    skipped.update(update.get("skipped_steps", ()))
    context.update(update.get("context") or {})
    results.update(update.get("intermediate_results") or {})


def _updates(finished: list[tuple[float, int, dict[str, Any]]], head: str | None) -> Any:
    """One `Command` per step update in finishing order (the reducers merge them)."""
    ordered = [update for _, _, update in sorted(finished, key=lambda item: item[:2])]
    tail = {"audit_head": head} if head is not None else {}
    if not ordered:
        return tail
    return [*(Command(update=u) for u in ordered), *([Command(update=tail)] if tail else [])]


def finished_in_flight(pending_writes: list[Any]) -> list[dict[str, Any]]:
    """The updates of DAG-task steps that finished while their superstep still runs (the
    saved results in a checkpoint's pending writes), for `status()` to show them."""
    out = []
    for write in pending_writes or ():
        value = write[2] if len(write) > 2 else None
        if isinstance(value, dict) and value.get(DAG_STEP) and value.get("ran"):
            update = value.get("update")
            if isinstance(update, dict):
                out.append(update)
    return out
