"""Assembling the one StateGraph that runs every workflow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

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
from state import EnterpriseWorkflowState

GRAPH_NAME = "enterprise_workflow"


def _node(fn: Callable[..., Any]) -> Any:
    # LangGraph's add_node overloads do not cover nodes taking both config and runtime, nor
    # runtimes with a context type; the signatures are checked by LangGraph at compile time.
    return fn


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
) -> CompiledStateGraph[EnterpriseWorkflowState, Any, Any, Any]:
    """Compile the enterprise graph; its input is `{"workflow": ..., "context": ...}`.

    ```
    START -> orchestrator -(determine_execution_path)-> parallel_executor | conditional_router
             | react_agent | human_approval (one Send per step) -> orchestrator
             orchestrator -> error_recovery -> orchestrator | END;  orchestrator -> END
    ```
    """
    builder = StateGraph(EnterpriseWorkflowState)
    builder.add_node("orchestrator", _node(orchestrator))
    builder.add_node("parallel_executor", _node(parallel_executor), input_schema=StepTask)
    builder.add_node("conditional_router", _node(conditional_router), input_schema=StepTask)
    builder.add_node("react_agent", _node(react_agent), input_schema=StepTask)
    builder.add_node("human_approval", _node(human_approval), input_schema=StepTask)
    builder.add_node("error_recovery", _node(error_recovery))
    builder.add_edge(START, "orchestrator")
    builder.add_conditional_edges(
        "orchestrator",
        determine_execution_path,
        [*EXECUTOR_NODES, "orchestrator", "error_recovery", END],
    )
    for node in EXECUTOR_NODES:
        builder.add_edge(node, "orchestrator")
    builder.add_conditional_edges(
        "error_recovery", after_recovery, ["orchestrator", "error_recovery", END]
    )
    return builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)
