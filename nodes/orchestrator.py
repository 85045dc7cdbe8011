"""The `orchestrator` node: the scheduler every other node returns to.

On first entry it starts the run; on every entry it folds in what finished, detects
completion, deadlock, timeout and cancellation, and picks the ready steps that the routing
function (`determine_execution_path`) dispatches, one `Send` per step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from nodes._compensation import compensation_plan
from nodes._dag import dag_enabled, dag_group
from nodes._definition import fingerprint, per_workflow, workflow_from_state
from nodes._events import emit
from nodes._fanout import is_fanout, pending_workers
from nodes._live import live_results, open_requests, pending_results
from nodes._outcome import utc_iso
from nodes._scheduler import Plan, node_for, plan, unhandled_failures
from nodes._services import RunServices, clock_of, control_of, hooks_of, max_tokens_of, step_logger
from nodes._sla import SLA_FLAG, announce, run_breach
from nodes._task import step_of, task_for
from nodes._webhook import refused_webhooks
from nodes.parallel_executor import execute
from state import (
    AdvancedWorkflow,
    EnterpriseWorkflowState,
    RunStateError,
    StepStatus,
    StepType,
    WorkflowDefinitionError,
    WorkflowStatus,
    WorkflowStep,
)

DISPATCH_ALL = "orchestrator_dispatch_all"
"""Config key: dispatch every ready step at once; the run's `max_concurrency` caps them."""


_STARTED = (WorkflowStatus.RUNNING.value, WorkflowStatus.WAITING_APPROVAL.value)


def _start(state: EnterpriseWorkflowState, config: RunnableConfig, now: float) -> dict[str, Any]:
    run_id = str(config.get("configurable", {}).get("thread_id", ""))
    base = {
        "run_id": run_id,
        "started_at": utc_iso(now),
        "started_monotonic": now,
        "input": dict(state.context),
    }
    try:
        workflow = AdvancedWorkflow.from_dict(state.workflow)
    except WorkflowDefinitionError as exc:
        return {
            **base,
            "status": WorkflowStatus.FAILED.value,
            "finished_at": utc_iso(now),
            "workflow_id": str(state.workflow.get("workflow_id") or ""),
            "error": {"step_id": None, "error_type": type(exc).__name__, "message": str(exc)},
        }
    step_logger(workflow_id=workflow.workflow_id, run_id=run_id).info("workflow_started")
    return {
        **base,
        "status": WorkflowStatus.RUNNING.value,
        "workflow_id": workflow.workflow_id,
        "workflow_key": fingerprint(state.workflow),
    }


def _refused_webhooks(
    state: EnterpriseWorkflowState, update: dict[str, Any], runtime: Runtime[Any]
) -> dict[str, Any]:
    """Fail a run at its start when a webhook's fixed host is not allowed: no step has had
    side effects yet, which would not be so if the webhook step itself found out."""
    context = runtime.context if runtime is not None else None
    allowed = context.webhook_allow_hosts if isinstance(context, RunServices) else frozenset()
    workflow = workflow_from_state(state.workflow, update.get("workflow_key") or None)
    refused = refused_webhooks(workflow.iter_steps(), workflow.global_variables, allowed)
    if not refused:
        return {}
    kind = "WebhookNotAllowedError"
    results = {
        sid: {
            "step_id": sid,
            "status": StepStatus.FAILED.value,
            "attempts": 0,
            "error_type": kind,
            "error": message,
        }
        for sid, message in refused
    }
    sid, message = refused[0]
    return {
        "failed_steps": [s for s, _ in refused],
        "step_results": results,
        "error": {"step_id": sid, "error_type": kind, "message": message},
    }


def _finish(status: WorkflowStatus, now: float, **extra: Any) -> dict[str, Any]:
    return {"status": status.value, "finished_at": utc_iso(now), "current_steps": [], **extra}


async def orchestrator(
    state: EnterpriseWorkflowState, config: RunnableConfig, runtime: Runtime[Any]
) -> dict[str, Any]:
    """Schedule the next steps of the run, or end it."""
    now = clock_of(runtime)()
    plans: list[Plan] = []
    update = _schedule(state, config, now, runtime, plans)
    hooks = hooks_of(runtime)
    ids = {
        "workflow_id": update.get("workflow_id", state.workflow_id),
        "run_id": update.get("run_id", state.run_id),
    }
    if state.status is WorkflowStatus.INITIALIZING and update.get("status") in _STARTED:
        hooks.on_run_started(**ids, **_optimization(state, update))
    if skipped := update.get("skipped_steps"):
        workflow = workflow_from_state(
            state.workflow, update.get("workflow_key") or state.workflow_key or None
        )
        for sid in skipped:
            kind = workflow.step(sid).step_type.value
            hooks.on_step(
                **ids,
                metrics_enabled=workflow.step(sid).metrics_enabled,
                step_id=sid,
                step_type=kind,
                status="skipped",
                duration=0.0,
                attempts=0,
                reason=update["step_results"][sid].get("reason"),
            )
    if update.get("finished_at"):
        started = update.get("started_monotonic", state.started_monotonic) or now
        _check_run_sla(state, update, now - started, runtime, ids)
        hooks.on_run_finished(**ids, status=update["status"], duration=now - started)
    if ready := update.get("current_steps"):
        workflow = workflow_from_state(
            state.workflow, update.get("workflow_key") or state.workflow_key or None
        )
        hooks.on_decision(
            **ids,
            strategy=_strategy(workflow, ready),
            ready=list(ready),
            complexity=_complexity(workflow),
            work=plans[-1].work if plans else 0,
        )
        top = _top_steps(workflow)
        for sid in ready:  # top-level approvals dispatched now (workers are not)
            if (step := top.get(sid)) is None:
                continue
            if step.approval is not None and step.step_type is StepType.HUMAN_APPROVAL:
                emit(
                    "step_waiting",
                    **ids,
                    step_id=sid,
                    step_type=step.step_type.value,
                    approvers=list(step.approval.approvers),
                    min_approvals=step.approval.min_approvals,
                )
    ready = update.get("current_steps") or []
    if len(ready) == 1 and _runs_inline(state, update, ready[0]):
        update = await _run_inline(state, update, ready[0], runtime)
    if update and (head := hooks.head(ids["run_id"])) is not None:
        update["audit_head"] = head
    return update


def _optimization(state: EnterpriseWorkflowState, update: dict[str, Any]) -> dict[str, Any]:
    """With `optimization_enabled`, the version a run uses and what it was optimized from."""
    workflow = workflow_from_state(state.workflow, update.get("workflow_key") or None)
    if not workflow.optimization_enabled:
        return {}
    origin = workflow.optimized_from
    return {
        "version": workflow.version,
        "optimized_from": origin.model_dump(mode="json") if origin is not None else None,
    }


def _runs_inline(state: EnterpriseWorkflowState, update: dict[str, Any], step_id: str) -> bool:
    """A lone executor step runs inside this superstep instead of a separate task.

    The step is still the only one in its superstep, so the checkpoint taken at its end keeps
    its result exactly as a separate task would; a sequential chain then costs one superstep
    per step instead of two.
    """
    key = update.get("workflow_key") or state.workflow_key
    workflow = workflow_from_state(state.workflow, key or None)
    return node_for(step_of(workflow, step_id).step_type) == "parallel_executor"


async def _run_inline(
    state: EnterpriseWorkflowState, update: dict[str, Any], step_id: str, runtime: Runtime[Any]
) -> dict[str, Any]:
    fields = ("run_id", "workflow_id", "workflow_key", "input", "started_monotonic", "decided_at")
    view = state.model_copy(update={k: update[k] for k in fields if k in update})
    workflow = workflow_from_state(state.workflow, view.workflow_key or None)
    step = step_of(workflow, step_id)
    step_update = await execute(task_for(view, workflow, step_id), step, runtime)
    merged = dict(update)
    for key, value in step_update.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = {**old, **value}
        elif isinstance(old, list) and isinstance(value, list):
            merged[key] = old + value
        else:
            merged[key] = value
    # done: the routing function comes straight back here (no write if already empty)
    if state.current_steps:
        merged["current_steps"] = []
    else:
        merged.pop("current_steps", None)
    return merged


def _check_run_sla(
    state: EnterpriseWorkflowState,
    update: dict[str, Any],
    duration: float,
    runtime: Runtime[Any],
    ids: dict[str, Any],
) -> None:
    """Flag and announce a run that outlived `sla_targets.max_duration_seconds`."""
    key = update.get("workflow_key") or state.workflow_key
    if not key:
        return  # the definition never parsed: there are no targets to check
    breach = run_breach(workflow_from_state(state.workflow, key).sla_targets, duration)
    if breach is not None:
        announce(breach, hooks_of(runtime), **ids)
        update["compliance_flags"] = [*update.get("compliance_flags", []), SLA_FLAG]


def _strategy(workflow: AdvancedWorkflow, ready: list[str]) -> str:
    types = {step_of(workflow, sid).step_type.value for sid in ready}
    if len(ready) == 1:
        return types.pop()
    return "parallel" if len(types) == 1 else "mixed"


@per_workflow
def _top_steps(workflow: AdvancedWorkflow) -> dict[str, WorkflowStep]:
    """Top-level steps by id: a decision looks up the steps it dispatches, not every step."""
    return {s.step_id: s for s in workflow.steps}


@per_workflow
def _complexity(workflow: AdvancedWorkflow) -> float:
    """Steps (nested included) plus dependency edges: a rough size of the decision space."""
    steps = list(workflow.iter_steps())
    return float(len(steps) + sum(len(s.dependencies) + len(s.conditions) for s in steps))


def _schedule(
    state: EnterpriseWorkflowState,
    config: RunnableConfig,
    now: float,
    runtime: Runtime[Any],
    plans: list[Plan],
) -> dict[str, Any]:
    """The update of this decision; the scheduler's plan, if one was made, goes to `plans`."""
    update: dict[str, Any] = {}
    if state.status is WorkflowStatus.INITIALIZING:
        update = _start(state, config, now)
        if update["status"] == WorkflowStatus.FAILED.value:
            return update
        if refused := _refused_webhooks(state, update, runtime):
            return {
                **update,
                **refused,
                **_finish(WorkflowStatus.FAILED, now, error=refused["error"]),
            }
    elif state.status.is_terminal or state.status is WorkflowStatus.PAUSED:
        return {}
    elif state.status is WorkflowStatus.WAITING_APPROVAL:
        update["status"] = WorkflowStatus.RUNNING.value  # an approval was decided
    workflow = workflow_from_state(
        state.workflow, update.get("workflow_key") or state.workflow_key or None
    )
    run_id = update.get("run_id") or state.run_id
    request = state.control or control_of(runtime)(run_id)
    if request:
        return {**update, **_lifecycle(state, workflow, request, now)}
    started = update.get("started_monotonic", state.started_monotonic) or now
    if workflow.timeout is not None and now - started > workflow.timeout:
        message = f"the run exceeded the workflow timeout of {workflow.timeout}s"
        error = {"step_id": None, "error_type": "WorkflowTimeoutError", "message": message}
        undo = compensation_plan(workflow, state.completed_steps, state.compensations)
        if undo:  # the saga is undone first, as for any run that cannot finish
            return {
                **update,
                "status": WorkflowStatus.ROLLBACK.value,
                "current_steps": [],
                "error": error,
                "compensation_plan": undo,
                "outcome_after_compensation": WorkflowStatus.TIMED_OUT.value,
            }
        return {**update, **_finish(WorkflowStatus.TIMED_OUT, now, error=error)}
    breach = run_breach(workflow.sla_targets, now - started)
    if breach is not None and breach.enforced:
        error = {"step_id": None, "error_type": "SlaBreachError", "message": breach.message}
        return {**update, **_finish(WorkflowStatus.FAILED, now, error=error)}
    if (budget_error := _over_budget(state, workflow, runtime)) is not None:
        return {**update, **_finish(WorkflowStatus.FAILED, now, error=budget_error)}
    if unhandled_failures(state, workflow):
        return {**update, "current_steps": []}  # error_recovery decides what the failure becomes
    dag = dag_enabled(config)
    decision = plan(
        workflow,
        completed=state.completed_steps,
        failed=state.failed_steps,
        skipped=state.skipped_steps,
        triggered=state.triggered_steps,
        handled=state.handled_failures,
        cap=not (dag or config.get("configurable", {}).get(DISPATCH_ALL, False)),
        run=run_id or None,
    )
    plans.append(decision)
    if dag:
        decision = replace(decision, ready=_with_dag(workflow, decision.ready))
    if decision.skip:
        update["skipped_steps"] = list(decision.skip)
        update["step_results"] = {
            sid: {"step_id": sid, "status": StepStatus.SKIPPED.value, "reason": reason}
            for sid, reason in decision.skip.items()
        }
    if decision.complete:
        step_logger(workflow_id=workflow.workflow_id, run_id=run_id).info("workflow_completed")
        final = dict(state.context)
        return {**update, **_finish(WorkflowStatus.COMPLETED, now, final_result=final)}
    if decision.deadlocked:
        waiting = "; ".join(
            f"'{sid}' waits for {', '.join(deps) or 'nothing'}"
            for sid, deps in decision.blocked.items()
        )
        message = f"no step can run and steps are left: {waiting}"
        error = {"step_id": None, "error_type": "DeadlockError", "message": message}
        return {**update, **_finish(WorkflowStatus.FAILED, now, error=error)}
    points = {
        sid: {"checkpoint_id": _checkpoint_id(runtime), "completed": len(state.completed_steps)}
        for sid in decision.ready
        if workflow.step(sid).rollback_point
    }
    if points:
        update["rollback_points"] = points
    capped = dag or not config.get("configurable", {}).get(DISPATCH_ALL, False)
    ready = _expand_fanouts(state, workflow, decision.ready, capped)
    dispatch: dict[str, Any] = {"current_steps": ready}
    # write only what changed: every channel written is a row in the checkpoint's writes
    approvals = [s for s in decision.ready if workflow.step(s).step_type is StepType.HUMAN_APPROVAL]
    if approvals:
        dispatch["decided_at"] = now  # the request time of the approvals dispatched now
        dispatch["approval_requests"] = open_requests(state, workflow, approvals, run_id, now)
    live = live_results(workflow, decision.ready, now)
    if state.status is WorkflowStatus.INITIALIZING:
        live = {**pending_results(workflow), **live}
    if live:
        dispatch["step_results"] = {**live, **update.get("step_results", {})}
    if decision.ready and all(
        workflow.step(s).step_type is StepType.HUMAN_APPROVAL for s in decision.ready
    ):
        # nothing else runs meanwhile: the run (and Studio's view of it) waits for people
        dispatch["status"] = WorkflowStatus.WAITING_APPROVAL.value
    elif state.status is not WorkflowStatus.RUNNING:
        dispatch["status"] = WorkflowStatus.RUNNING.value
    return {**update, **dispatch}


def _with_dag(workflow: AdvancedWorkflow, ready: list[str]) -> list[str]:
    """The steps to dispatch when ready action steps go out as one DAG task: the whole
    group (its task caps how many run at once), every approval, and up to
    `max_parallel_steps - 1` others, so that the others and the group's steps stay within
    the cap together."""
    cap = workflow.max_parallel_steps
    group = dag_group(workflow, ready)
    # approvals only open a request and wait: they take no slot, and all go out at once
    waits = [s for s in ready if workflow.step(s).step_type is StepType.HUMAN_APPROVAL]
    others = [sid for sid in ready if sid not in group and sid not in waits]
    if not group:
        return [sid for sid in ready if sid in waits or sid in others[:cap]]
    kept = set(others[: max(0, cap - 1)]) | set(waits)
    return [*group, *(sid for sid in ready if sid in kept)]


def _expand_fanouts(
    state: EnterpriseWorkflowState, workflow: AdvancedWorkflow, ready: list[str], capped: bool
) -> list[str]:
    """Ready fan-out steps with a plan become their unfinished workers (`step#n`), capped at
    `max_parallel_steps` per step; once every worker finished the step itself goes out again
    to reduce."""
    out: list[str] = []
    for sid in ready:
        plan = state.fanout_plans.get(sid)
        if plan is None or not is_fanout(workflow.step(sid)):
            out.append(sid)
            continue
        pending = pending_workers(sid, plan, state.worker_results)
        out.extend((pending[: workflow.max_parallel_steps] if capped else pending) or [sid])
    return out


def _over_budget(
    state: EnterpriseWorkflowState, workflow: AdvancedWorkflow, runtime: Runtime[Any]
) -> dict[str, Any] | None:
    """The run error once the run's model calls used more tokens than its budget."""
    budget = workflow.sla_targets.max_tokens or max_tokens_of(runtime)
    used = int(state.token_usage.get("total_tokens") or 0)
    if budget is None or used <= budget:
        return None
    message = (
        f"the run used {used} model tokens, exceeding its budget of {budget} "
        "(sla_targets.max_tokens); raise max_tokens or make the prompts shorter"
    )
    return {"step_id": None, "error_type": "TokenBudgetError", "message": message}


def _checkpoint_id(runtime: Runtime[Any]) -> str | None:
    """The checkpoint this superstep started from: restoring it re-runs this decision."""
    info = getattr(runtime, "execution_info", None)
    return info.checkpoint_id if info is not None else None


def _lifecycle(
    state: EnterpriseWorkflowState, workflow: AdvancedWorkflow, request: str, now: float
) -> dict[str, Any]:
    """Carry out a pause, cancel or rollback request at this step boundary."""
    if request == "pause":
        return {"status": WorkflowStatus.PAUSED.value, "current_steps": [], "control": None}
    if request == "cancel":
        return _finish(WorkflowStatus.CANCELLED, now, control=None)
    if request == "cancel_compensate":
        steps = compensation_plan(workflow, state.completed_steps, state.compensations)
        return {
            "status": WorkflowStatus.ROLLBACK.value,
            "current_steps": [],
            "control": None,
            "compensation_plan": steps,
            "outcome_after_compensation": WorkflowStatus.CANCELLED.value,
        }
    if request == "rollback" and state.rollback_to:
        point = state.rollback_points.get(state.rollback_to)
        if not point:
            message = (
                f"rollback point '{state.rollback_to}' was never reached in this run, so there "
                "is nothing to return to; roll back to a point that ran"
            )
            error = {"step_id": None, "error_type": "RunStateError", "message": message}
            return _finish(WorkflowStatus.FAILED, now, error=error, control=None)
        steps = compensation_plan(
            workflow, state.completed_steps, state.compensations, since=point["completed"]
        )
        return {
            "status": WorkflowStatus.ROLLBACK.value,
            "current_steps": [],
            "control": None,
            "compensation_plan": steps,
            "outcome_after_compensation": WorkflowStatus.PAUSED.value,
        }
    raise RunStateError(f"unknown lifecycle request {request!r}; use pause or cancel")
