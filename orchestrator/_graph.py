"""Assembling the one StateGraph that runs every workflow."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from nodes import (
    EXECUTOR_NODES,
    StepTask,
    after_recovery,
    conditional_router,
    determine_execution_path,
    error_recovery,
    human_approval,
    orchestrator,
    parallel_executor,
    react_agent,
)
from state import (
    EnterpriseWorkflowState,
    WorkflowFailedError,
    WorkflowStatus,
    finish_update,
    pack,
)

GRAPH_NAME = "enterprise_workflow"


def _node(fn: Callable[..., Awaitable[dict[str, Any]]]) -> Any:
    """The node writing its step fields packed into `progress` (one checkpoint row).

    The update that ends a run unpacks them into the public fields instead, so a finished
    run reads as it always did. The wrapper keeps the node's signature (LangGraph reads it
    for the input schema and the config/runtime arguments).
    """

    @functools.wraps(fn)
    async def packed(state: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        update = await fn(state, *args, **kwargs)
        if isinstance(update, list):  # a DAG task: one Command per step, in finishing order
            return [_packed_command(c) for c in update]
        if not isinstance(update, dict) or not update:
            return update
        if isinstance(state, EnterpriseWorkflowState) and _ends(update.get("status")):
            return finish_update(state, update)
        return pack(update)

    # LangGraph's add_node overloads do not cover nodes taking both config and runtime, nor
    # runtimes with a context type; the signatures are checked by LangGraph at compile time.
    return packed


def _packed_command(command: Any) -> Any:
    if isinstance(command, Command) and isinstance(command.update, dict):
        return dataclasses.replace(command, update=pack(command.update))
    return command


_ENDED = frozenset(s.value for s in WorkflowStatus if s.is_terminal)


def _ends(status: Any) -> bool:
    return status is not None and str(getattr(status, "value", status)) in _ENDED


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    *,
    input_schema: type[Any] | None = None,
    output_schema: type[Any] | None = None,
    fail_runs: bool = False,
) -> CompiledStateGraph[EnterpriseWorkflowState, Any, Any, Any]:
    """Compile the enterprise graph; its input is `{"workflow": ..., "context": ...}`.

    ```
    START -> orchestrator -(determine_execution_path)-> parallel_executor | conditional_router
             | react_agent | human_approval (one Send per step) -> orchestrator
             orchestrator -> error_recovery -> orchestrator | END;  orchestrator -> END
    ```

    `input_schema`/`output_schema` narrow what callers send and get back (the Studio entry);
    with `fail_runs` a failed or timed-out workflow ends in `workflow_failed`, which raises
    `WorkflowFailedError` so the LangGraph run itself fails (its state is kept).
    """
    compiled = _compiled(input_schema, output_schema, fail_runs)
    # a copy shares the compiled nodes and channels; only the saver differs per orchestrator
    return compiled.copy(update={"checkpointer": checkpointer})


_COMPILED: dict[tuple[Any, Any, bool], CompiledStateGraph[Any, Any, Any, Any]] = {}


def _compiled(
    input_schema: type[Any] | None, output_schema: type[Any] | None, fail_runs: bool
) -> CompiledStateGraph[EnterpriseWorkflowState, Any, Any, Any]:
    """The graph compiled once per process and shape (compiling inspects every node's
    bytecode: tens of milliseconds each orchestrator would pay)."""
    key = (input_schema, output_schema, fail_runs)
    if (done := _COMPILED.get(key)) is not None:
        return done
    builder = StateGraph(
        EnterpriseWorkflowState, input_schema=input_schema, output_schema=output_schema
    )
    builder.add_node("orchestrator", _node(orchestrator))
    builder.add_node("parallel_executor", _node(parallel_executor), input_schema=StepTask)
    builder.add_node("conditional_router", _node(conditional_router), input_schema=StepTask)
    builder.add_node("react_agent", _node(react_agent), input_schema=StepTask)
    builder.add_node("human_approval", _node(human_approval), input_schema=StepTask)
    builder.add_node("error_recovery", _node(error_recovery))
    builder.add_edge(START, "orchestrator")
    route, recover, ends = determine_execution_path, after_recovery, [END]
    if fail_runs:
        builder.add_node("workflow_failed", _node(workflow_failed))
        route = _failing(determine_execution_path, with_config=True)
        recover = _failing(after_recovery)
        ends = [END, "workflow_failed"]
    builder.add_conditional_edges(
        "orchestrator", route, [*EXECUTOR_NODES, "orchestrator", "error_recovery", *ends]
    )
    for node in EXECUTOR_NODES:
        builder.add_edge(node, "orchestrator")
    builder.add_conditional_edges(
        "error_recovery", recover, ["orchestrator", "error_recovery", *ends]
    )
    return _COMPILED.setdefault(key, builder.compile(name=GRAPH_NAME))


_FAILED = (WorkflowStatus.FAILED, WorkflowStatus.TIMED_OUT)


def _failing(route: Callable[..., Awaitable[Any]], *, with_config: bool = False) -> Any:
    async def routed(state: EnterpriseWorkflowState, config: RunnableConfig) -> Any:
        target = await (route(state, config) if with_config else route(state))
        return "workflow_failed" if target == END and state.status in _FAILED else target

    routed.__name__ = route.__name__
    return routed


async def workflow_failed(state: EnterpriseWorkflowState) -> dict[str, Any]:
    """Fail the LangGraph run of a workflow that failed (Studio shows the run as an error)."""
    error = state.error or {}
    where = f" in step '{error['step_id']}'" if error.get("step_id") else ""
    raise WorkflowFailedError(
        f"workflow '{state.workflow_id}' {state.status.value}{where}: "
        f"{error.get('error_type', 'error')}: {error.get('message', 'see step_results')}"
    )
