"""The data: what a workflow is and where a run stands. Pydantic models, no I/O."""

from state._enums import OnTimeout, RunId, StepId, StepStatus, StepType, WorkflowStatus
from state._errors import (
    ActionNotFoundError,
    CheckpointerError,
    CircuitOpenError,
    DefinitionProblem,
    ExpressionError,
    InvalidInputError,
    MappingError,
    OrchestratorError,
    RendererNotFoundError,
    RunNotFoundError,
    RunStateError,
    SlaBreachError,
    StepFailedError,
    StepTimeoutError,
    WebhookError,
    WebhookNotAllowedError,
    WorkflowDefinitionError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from state._expression_syntax import ALLOWED_FUNCTIONS, NAMESPACE_ROOTS, check_expression
from state._retry_policy import RetryPolicy
from state._run_state import EnterpriseWorkflowState, StepResult
from state._step import ApprovalConfig, Condition, WebhookConfig, WorkflowStep
from state._workflow import AdvancedWorkflow, SlaTargets

__all__ = [
    "ALLOWED_FUNCTIONS",
    "NAMESPACE_ROOTS",
    "ActionNotFoundError",
    "AdvancedWorkflow",
    "ApprovalConfig",
    "CheckpointerError",
    "CircuitOpenError",
    "Condition",
    "DefinitionProblem",
    "EnterpriseWorkflowState",
    "ExpressionError",
    "InvalidInputError",
    "MappingError",
    "OnTimeout",
    "OrchestratorError",
    "RendererNotFoundError",
    "RetryPolicy",
    "RunId",
    "RunNotFoundError",
    "RunStateError",
    "SlaBreachError",
    "SlaTargets",
    "StepFailedError",
    "StepId",
    "StepResult",
    "StepStatus",
    "StepTimeoutError",
    "StepType",
    "WebhookConfig",
    "WebhookError",
    "WebhookNotAllowedError",
    "WorkflowDefinitionError",
    "WorkflowFailedError",
    "WorkflowStatus",
    "WorkflowStep",
    "WorkflowTimeoutError",
    "check_expression",
]
