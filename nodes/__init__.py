"""The graph's nodes: one module per node, each `(state or task, runtime) -> update`."""

from nodes._compensation import compensation_plan
from nodes._definition import workflow_from_state
from nodes._events import STREAM_EVENTS, StreamEvents
from nodes._hooks import CompositeHooks, RunHooks
from nodes._routing import EXECUTOR_NODES, determine_execution_path
from nodes._services import ActionInvoker, RunServices, StepContext, load_actions_module
from nodes._task import StepTask
from nodes._webhook import refused_webhooks
from nodes.conditional_router import conditional_router
from nodes.error_recovery import after_recovery, error_recovery
from nodes.human_approval import ApprovalRejectedError, human_approval
from nodes.orchestrator import orchestrator
from nodes.parallel_executor import parallel_executor
from nodes.react_agent import react_agent

__all__ = [
    "EXECUTOR_NODES",
    "STREAM_EVENTS",
    "ActionInvoker",
    "ApprovalRejectedError",
    "CompositeHooks",
    "RunHooks",
    "RunServices",
    "StepContext",
    "StepTask",
    "StreamEvents",
    "after_recovery",
    "compensation_plan",
    "conditional_router",
    "determine_execution_path",
    "error_recovery",
    "human_approval",
    "load_actions_module",
    "orchestrator",
    "parallel_executor",
    "react_agent",
    "refused_webhooks",
    "workflow_from_state",
]
