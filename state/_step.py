"""`WorkflowStep` and the typed sub-configs some step types need."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from state._enums import OnTimeout, StepId, StepType
from state._field_docs import DocumentedModel
from state._retry_policy import RetryPolicy

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
MAX_LOOP_ITERATIONS = 10_000

ACTION_STEP_TYPES = frozenset({StepType.SEQUENTIAL, StepType.WORKER, StepType.ORCHESTRATOR})
"""Step types that call a registered action (or agent) directly."""

CONTAINER_STEP_TYPES = frozenset({StepType.PARALLEL, StepType.LOOP})
"""Step types that hold child steps."""


class _Config(DocumentedModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Condition(_Config):
    """One routing rule of a conditional step: `{if: expr, then: [ids]}` or `{else: [ids]}`."""

    if_: str | None = Field(default=None, alias="if")
    """A safe expression; the first rule whose expression is true wins."""
    then: list[StepId] = Field(default_factory=list)
    """Steps to run when `if` holds."""
    else_: list[StepId] | None = Field(default=None, alias="else")
    """Steps to run when no `if` rule matched; only allowed as the last rule."""

    @field_validator("then", "else_", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _if_or_else(self) -> Condition:
        if (self.if_ is None) == (self.else_ is None):
            raise ValueError("a condition has either `if` (with `then`) or `else`, not both")
        if self.if_ is not None and not self.then:
            raise ValueError(f"condition `{self.if_}` has no `then` steps")
        return self

    @property
    def targets(self) -> list[StepId]:
        """The steps this rule routes to."""
        return list(self.else_ if self.else_ is not None else self.then)


class ApprovalConfig(_Config):
    """Who must approve a `human_approval` step, and what happens when nobody does."""

    approvers: list[str] = Field(min_length=1)
    """Users allowed to decide; decisions by anybody else are refused."""
    min_approvals: Annotated[int, Field(ge=1)] = 1
    """Distinct allowed approvers needed to approve."""
    timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    """Deadline after the request; None waits forever."""
    on_timeout: OnTimeout = OnTimeout.REJECT
    """What an expired wait becomes when `orchestrator sweep` finds it."""
    escalate_to: list[str] = Field(default_factory=list)
    """Approvers added on escalation."""
    on_reject: StepId | None = None
    """Step to route to on rejection instead of failing the step."""
    summary: str | None = None
    """Text shown to approvers; defaults to the step's mapped inputs."""

    @model_validator(mode="after")
    def _enough_approvers(self) -> ApprovalConfig:
        if self.min_approvals > len(set(self.approvers)):
            raise ValueError(
                f"min_approvals is {self.min_approvals} but only {len(set(self.approvers))} "
                "distinct approvers are listed; add approvers or lower min_approvals"
            )
        if self.on_timeout is OnTimeout.ESCALATE and not self.escalate_to:
            raise ValueError("on_timeout: escalate needs `escalate_to` approvers")
        return self


class WebhookConfig(_Config):
    """Where a `webhook` step sends its mapped inputs."""

    url: str = Field(min_length=1)
    """Target URL; `{path}` placeholders are filled from the namespace."""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    """HTTP method; the mapped inputs are the JSON body (query parameters for GET)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers."""
    timeout: Annotated[float, Field(gt=0)] = 10.0
    """Seconds allowed for one request."""

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class RouterConfig(_Config):
    """LLM routing of a conditional step: a chat model picks one of `routes`."""

    capability: str = Field(min_length=1)
    """The chat model that decides: a registered agent name or a model string
    (`"openai:gpt-4o-mini"`)."""
    routes: dict[StepId, str] = Field(min_length=1)
    """`{step_id: description}`: the branches the model may choose and what each is for."""
    prompt: str | None = None
    """Extra instructions; `{path}` placeholders are filled from the namespace."""


class WorkflowStep(DocumentedModel):
    """One unit of work in a workflow. Immutable once a run starts.

    Example:
        `WorkflowStep(step_id="charge", action="charge_card", dependencies=["authorize"])`
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    step_id: StepId = Field(pattern=STEP_ID_PATTERN)
    """Unique id within the workflow, nested steps included."""
    name: str | None = None
    """Human-readable name; defaults to the id."""
    description: str | None = None
    """What the step is for."""
    step_type: StepType = StepType.SEQUENTIAL
    """Which kind of work it does; decides the graph node that runs it."""
    action: str | None = None
    """Name of a registered action to call."""
    agent_capability: str | None = None
    """A registered agent (chat model, compiled graph, Runnable) or a model string such as
    `openai:gpt-4o-mini`: the model of a react step, the planner of an orchestrator step, the
    router of an adaptive conditional, or the work of an action step."""
    timeout: Annotated[float, Field(gt=0)] | None = None
    """Seconds one attempt may take."""
    isolation: Literal["thread", "process"] = "thread"
    """Where a sync action runs: `thread` (a timeout waits for it to return and records the
    overrun) or `process` (a child process that a timeout kills). Action steps only."""
    input_mapping: dict[str, str] = Field(default_factory=dict)
    """`{param: path}` over the namespace `{input, context, results, globals}`."""
    output_mapping: dict[str, str] = Field(default_factory=dict)
    """`{context_key: path}` over the step's output (`@` is the whole output)."""
    input_validation: dict[str, str] = Field(default_factory=dict)
    """`{param: type}` checked before the action runs (str, int, float, number, bool, dict,
    list, any); every listed param is required."""
    dependencies: list[StepId] = Field(default_factory=list)
    """Steps that must finish (completed, or skipped with another completed) first."""
    conditions: list[Condition] = Field(default_factory=list)
    """Routing rules of a conditional step, first match wins, `else` last."""
    next_steps: list[StepId] = Field(default_factory=list)
    """Steps that run after this one (each implicitly depends on it)."""
    error_handlers: list[StepId] = Field(default_factory=list)
    """Steps run when this one fails after its retries."""
    retry_policy: RetryPolicy | None = None
    """Overrides the workflow's retry policy, field by field."""
    continue_on_failure: bool | None = None
    """Shortcut for `retry_policy.continue_on_failure`."""
    parallel_failure_threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    """Shortcut for `retry_policy.parallel_failure_threshold` (parallel containers)."""
    rollback_actions: list[str] = Field(default_factory=list)
    """Actions that undo this step's effects (compensation), run newest step first."""
    rollback_point: bool = False
    """Record a checkpoint before this step that `rollback --to` can return to."""
    rollback_to: StepId | None = None
    """For a `rollback` step: the rollback point (a step with `rollback_point: true`) to undo
    the run back to; the run is compensated, restored there and left paused."""
    parallel_steps: list[WorkflowStep] = Field(default_factory=list)
    """Children of a parallel container, run concurrently."""
    body: list[WorkflowStep] = Field(default_factory=list)
    """Children of a loop, run in order on each iteration."""
    loop_condition: str | None = None
    """A loop iterates while this safe expression holds (checked before each iteration)."""
    loop_max_iterations: Annotated[int, Field(ge=1, le=MAX_LOOP_ITERATIONS)] = 10
    """Upper bound on a loop's iterations."""
    approval: ApprovalConfig | None = None
    """Approval policy of a human_approval step."""
    webhook: WebhookConfig | None = None
    """Request settings of a webhook step."""
    tools: list[str] = Field(default_factory=list)
    """Registered tools a react step may call."""
    prompt: str | None = None
    """Instructions of a react step; `{path}` placeholders are filled from the namespace."""
    max_iterations: Annotated[int, Field(ge=1, le=100)] = 8
    """Model calls a react step may make."""
    on_limit: Literal["fail", "partial"] = "fail"
    """What a react step that reaches `max_iterations` becomes: `fail`, or `partial` (it
    completes with the last answer so far and the `iteration_limit_reached` flag)."""
    output_schema: dict[str, Any] | None = None
    """JSON Schema of a structured answer (react steps); the answer is then an object."""
    router: RouterConfig | None = None
    """LLM routing of a conditional step; `conditions` (if any) are tried first and their
    `else` is the fallback for an invalid choice."""
    for_each: str | None = None
    """Path to a list: the step's action (or agent) runs once per item, each a durable worker
    of its own; `item` in `input_mapping` paths is the current item."""
    max_subtasks: Annotated[int, Field(ge=1, le=1000)] = 10
    """Most subtasks an orchestrator step's plan (or a `for_each` list) may have."""
    workers: list[str] = Field(default_factory=list)
    """Capabilities an orchestrator step's plan may use (empty: any registered action or
    agent)."""
    reduce: str | None = None
    """Action merging the workers' results of a fan-out step (gets `results`, `subtasks`)."""
    metrics_enabled: bool = True
    """Record this step's duration and outcome in metrics (false leaves it out of the step
    series; the run still counts it)."""
    custom_metrics: dict[str, str] = Field(default_factory=dict)
    """Prometheus series this step feeds: a list of names, or `{name: kind}` with kind
    `gauge`, `counter` or `histogram` (set from the action with `ctx.metric(name, value)`),
    or `{name: path}` to record a value of the output as a gauge."""
    cacheable: bool = False
    """Serve this step from the step cache when an earlier run of the same action, workflow
    version and inputs stored its output (action steps only)."""
    cache_ttl: Annotated[float, Field(gt=0)] = 3600.0
    """Seconds a cached output stays valid."""

    @field_validator("custom_metrics", mode="before")
    @classmethod
    def _metric_names(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return dict.fromkeys((str(name) for name in value), "gauge")
        return value

    def retry_over(self, default: RetryPolicy) -> RetryPolicy:
        """`default` (the workflow's policy) with this step's own settings applied."""
        policy = default.merged_with(self.retry_policy)
        shortcuts = {
            "continue_on_failure": self.continue_on_failure,
            "parallel_failure_threshold": self.parallel_failure_threshold,
        }
        changes = {k: v for k, v in shortcuts.items() if v is not None}
        return policy.model_copy(update=changes) if changes else policy

    @property
    def children(self) -> list[WorkflowStep]:
        """Nested steps (parallel children or loop body)."""
        return [*self.parallel_steps, *self.body]

    @property
    def display_name(self) -> str:
        """`name` or the id."""
        return self.name or self.step_id
