"""`EnterpriseWorkflowState`, the StateGraph schema, and `StepResult`.

Checkpoints hold plain data only (str, numbers, dicts, lists), so they load under
`LANGGRAPH_STRICT_MSGPACK=true` anywhere, including LangGraph Studio. Fields that grow with the
run use `DeltaChannel`, which stores each superstep's writes instead of the whole value, so a
checkpoint does not grow with the length of the run.
"""

from __future__ import annotations

from typing import Annotated, Any

from langgraph.channels import DeltaChannel
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, model_validator

from state._enums import StepStatus, WorkflowStatus
from state._progress import PROGRESS, merge_progress, unpack
from state._reducers import (
    add,
    append_unique,
    last_write,
    latest_head,
    merge_dicts,
    merge_two,
    sum_counts,
    union_two,
)

_SNAPSHOT_EVERY = 1000
"""A growing field stores a full snapshot once per this many writes; in between, checkpoints
hold only each superstep's writes (a cold load replays at most this many)."""

# `SkipValidation`: LangGraph builds the state model from the channel values on every node
# call; validating (and so copying) fields that grow with the run made each step cost more
# than the one before. The reducers alone write these channels, so their values are
# already well-formed; the JSON Schema still shows the declared types.
GrowingDict = Annotated[
    dict[str, Any],
    SkipValidation,
    DeltaChannel(merge_dicts, dict, snapshot_frequency=_SNAPSHOT_EVERY),
]
WrittenOnce = Annotated[dict[str, Any], SkipValidation, DeltaChannel(last_write, dict)]
"""Large values written once per run (the definition, the input): kept out of every
checkpoint blob and rebuilt from the write that set them."""
GrowingIds = Annotated[
    list[str],
    SkipValidation,
    DeltaChannel(append_unique, list, snapshot_frequency=_SNAPSHOT_EVERY),
]


class StepResult(BaseModel):
    """What happened to one step of a run (its output lives in `intermediate_results`)."""

    model_config = ConfigDict(extra="ignore")

    step_id: str
    """The step."""
    status: StepStatus
    """completed, failed or skipped."""
    attempts: int = 0
    """Attempts made, the first included."""
    started_at: str | None = None
    """ISO-8601 UTC start time of the first attempt."""
    finished_at: str | None = None
    """ISO-8601 UTC end time of the last attempt."""
    duration_seconds: float = 0.0
    """Wall time from first start to last end."""
    cpu_seconds: float = 0.0
    """CPU time of the executing thread(s) during the step."""
    error_type: str | None = None
    """Class name of the final error, if it failed."""
    error: str | None = None
    """Message of the final error, if it failed."""
    traceback: str | None = None
    """Short traceback summary of the final error."""
    reason: str | None = None
    """Why it was skipped, when it was."""
    iterations: int | None = None
    """Iterations a loop ran."""


class EnterpriseWorkflowState(BaseModel):
    """Where a run stands; the schema of the compiled StateGraph.

    The graph's input is `{"workflow": <definition>, "context": <input>}`.
    """

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=False)

    workflow: WrittenOnce = Field(default_factory=dict)
    """The definition being run, as plain data."""
    workflow_key: str = ""
    """Digest of `workflow`, set at start, so nodes parse the definition once per process."""
    workflow_id: str = ""
    """Id of the workflow."""
    run_id: str = ""
    """Id of this run (the LangGraph thread id)."""
    status: WorkflowStatus = WorkflowStatus.INITIALIZING
    """Where the run stands."""
    input: WrittenOnce = Field(default_factory=dict)
    """The run's input, unchanged (namespace `input`)."""
    context: GrowingDict = Field(default_factory=dict)
    """Working data: starts as a copy of the input; output mappings write here."""
    intermediate_results: GrowingDict = Field(default_factory=dict)
    """`{step_id: output}` of every finished step (namespace `results`)."""
    step_results: GrowingDict = Field(default_factory=dict)
    """`{step_id: StepResult data}`."""
    completed_steps: GrowingIds = Field(default_factory=list)
    """Steps that completed, in order."""
    failed_steps: GrowingIds = Field(default_factory=list)
    """Steps that failed after their retries."""
    skipped_steps: GrowingIds = Field(default_factory=list)
    """Steps that will not run (branch not taken, dependencies skipped, continue_on_failure)."""
    current_steps: list[str] = Field(default_factory=list)
    """Steps dispatched in the current superstep."""
    final_result: dict[str, Any] | None = None
    """The final context, once the run completed."""
    error: dict[str, Any] | None = None
    """`{step_id, error_type, message}` of the failure that ended the run."""
    started_at: str | None = None
    """ISO-8601 UTC start of the run, set once by the orchestrator node."""
    started_monotonic: float | None = None
    """Wall clock (epoch seconds) at start, for the workflow timeout."""
    finished_at: str | None = None
    """ISO-8601 UTC end of the run."""
    retry_counts: Annotated[dict[str, Any], merge_two] = Field(default_factory=dict)
    """`{step_id: retries}` (attempts beyond the first)."""
    error_counts: Annotated[dict[str, Any], sum_counts] = Field(default_factory=dict)
    """`{error_type: count}` over failed attempts."""
    stored_bytes: Annotated[int, add] = 0
    """JSON bytes of every step output stored so far (bounded by `max_run_state_bytes`)."""
    resource_usage: GrowingDict = Field(default_factory=dict)
    """`{step_id: {wall_seconds, cpu_seconds, attempts}}`."""
    rollback_points: Annotated[dict[str, Any], merge_two] = Field(default_factory=dict)
    """`{step_id: checkpoint_id}` recorded before steps marked `rollback_point`."""
    approval_requests: Annotated[dict[str, Any], merge_two] = Field(default_factory=dict)
    """`{request_id: ApprovalRequest data}` of approvals asked for."""
    compliance_flags: Annotated[list[str], union_two] = Field(default_factory=list)
    """Flags such as `sla_breached`, `loop_limit_reached`, `circuit_open`."""
    rollback_count: int = 0
    """Rollbacks so far; re-executed steps get fresh idempotency keys after each one."""
    audit_head: Annotated[str | None, latest_head] = None
    """Hash of the run's latest audit-ledger entry (the ledger itself lives outside state)."""
    decided_at: float | None = None
    """Epoch time of the orchestrator's latest dispatch (the request time of approvals)."""
    control: str | None = None
    """A lifecycle request being carried out: `pause`, `cancel`, `cancel_compensate`,
    `rollback`."""
    triggered_steps: Annotated[list[str], union_two] = Field(default_factory=list)
    """Error-handler (or on_reject) steps a failure called; the scheduler runs them."""
    handled_failures: Annotated[list[str], union_two] = Field(default_factory=list)
    """Failed steps whose failure was handled (handlers ran): they count as skipped."""
    compensation_plan: list[list[str]] | None = None
    """`[[step_id, action], ...]` still to run, newest step first, while compensating."""
    compensations: Annotated[dict[str, Any], merge_two] = Field(default_factory=dict)
    """`{"step_id:action": {status, error, attempts}}` of compensations that ran."""
    outcome_after_compensation: str | None = None
    """Status the run ends with once compensation is done (`failed`, `cancelled`,
    `paused` for a rollback)."""
    rollback_to: str | None = None
    """Rollback point a rollback step or `rollback --to` asked for."""
    token_usage: Annotated[dict[str, Any], sum_counts] = Field(default_factory=dict)
    """`{input_tokens, output_tokens, total_tokens, model_calls}` over the run's model calls."""
    fanout_plans: Annotated[dict[str, Any], merge_two] = Field(default_factory=dict)
    """`{step_id: [subtask, ...]}` of fan-out steps whose plan is made."""
    worker_results: GrowingDict = Field(default_factory=dict)
    """`{"step_id#n": {status, output, error}}` of the fan-out workers that finished."""
    progress: Annotated[
        dict[str, Any],
        SkipValidation,
        DeltaChannel(merge_progress, dict, snapshot_frequency=_SNAPSHOT_EVERY),
    ] = Field(default_factory=dict)
    """The fields steps write (`step_results`, `completed_steps`, ...), packed into one
    channel so that a step writes one checkpoint row; read those fields, not this one (the
    model unpacks it into them)."""

    @model_validator(mode="before")
    @classmethod
    def _unpack_progress(cls, data: Any) -> Any:
        """Merge the packed `progress` into the public fields."""
        if isinstance(data, dict) and data.get(PROGRESS):
            return unpack(data)
        return data
