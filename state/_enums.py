"""Status and type enums. `str` enums, so they serialise as plain strings everywhere."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

StepId = NewType("StepId", str)
"""The id of a step, unique within its workflow (containers and loop bodies included)."""

RunId = NewType("RunId", str)
"""The id of a run; it is the LangGraph `thread_id`."""


class WorkflowStatus(StrEnum):
    """Where a run stands."""

    PENDING = "pending"
    INITIALIZING = "initializing"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_APPROVAL = "waiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLBACK = "rollback"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        """True when the run can never continue."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
        WorkflowStatus.CANCELLED,
        WorkflowStatus.TIMED_OUT,
    }
)


class StepStatus(StrEnum):
    """Where a step of a run stands."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"
    RETRYING = "retrying"


class StepType(StrEnum):
    """What kind of work a step does; decides which graph node runs it."""

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    CONDITIONAL = "conditional"
    LOOP = "loop"
    REACT = "react"
    HUMAN_APPROVAL = "human_approval"
    ORCHESTRATOR = "orchestrator"
    WORKER = "worker"
    WEBHOOK = "webhook"
    ROLLBACK = "rollback"


class OnTimeout(StrEnum):
    """What happens to an approval whose deadline passed."""

    REJECT = "reject"
    APPROVE = "approve"
    ESCALATE = "escalate"
