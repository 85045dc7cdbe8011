"""`EnterpriseWorkflowState`, the StateGraph schema, and `StepResult`.

Checkpoints hold plain data only (str, numbers, dicts, lists), so they load under
`LANGGRAPH_STRICT_MSGPACK=true` anywhere, including LangGraph Studio. Fields that grow with the
run use `DeltaChannel`, which stores each superstep's writes instead of the whole value, so a
checkpoint does not grow with the length of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from langgraph.channels import DeltaChannel
from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from state._enums import StepStatus, WorkflowStatus


def merge_dicts(current: dict[str, Any] | None, writes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Reducer: later writes win key by key (batching-invariant, as DeltaChannel requires)."""
    merged = dict(current or {})
    for write in writes:
        merged.update(write)
    return merged


def append_unique(current: list[str] | None, writes: Sequence[list[str]]) -> list[str]:
    """Reducer: append ids not yet present, keeping first-seen order.

    A step appends one or two ids to a list as long as the run: those are looked up in the
    list itself (a scan in C), so no set of every id is built per write.
    """
    base = current or []
    new = [item for write in writes for item in write]
    if len(new) > _SCAN_AT_MOST:
        seen = set(base)
        added: list[str] = []
        for item in new:
            if item not in seen:
                seen.add(item)
                added.append(item)
    else:
        added = []
        for item in new:
            if item not in added and item not in base:
                added.append(item)
    return [*base, *added]


_SCAN_AT_MOST = 4
"""Writes of up to this many ids scan the list; larger ones build a set once."""


def _merge_two(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return merge_dicts(left, [right or {}])


def _sum_counts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    total = dict(left or {})
    for key, value in (right or {}).items():
        total[key] = total.get(key, 0) + value
    return total


def _add(left: int | None, right: int | None) -> int:
    return (left or 0) + (right or 0)


def _union_two(left: list[str] | None, right: list[str] | None) -> list[str]:
    return append_unique(left, [right or []])


def _latest_head(left: str | None, right: str | None) -> str | None:
    """Reducer: the steps of one superstep each report the ledger's head; any of them is in
    the chain, and the orchestrator node writes the newest one right after."""
    return right if right is not None else left


def last_write(current: dict[str, Any] | None, writes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Reducer: the latest write replaces the value (batching-invariant)."""
    return dict(writes[-1]) if writes else dict(current or {})


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
    retry_counts: Annotated[dict[str, Any], _merge_two] = Field(default_factory=dict)
    """`{step_id: retries}` (attempts beyond the first)."""
    error_counts: Annotated[dict[str, Any], _sum_counts] = Field(default_factory=dict)
    """`{error_type: count}` over failed attempts."""
    stored_bytes: Annotated[int, _add] = 0
    """JSON bytes of every step output stored so far (bounded by `max_run_state_bytes`)."""
    resource_usage: GrowingDict = Field(default_factory=dict)
    """`{step_id: {wall_seconds, cpu_seconds, attempts}}`."""
    rollback_points: Annotated[dict[str, Any], _merge_two] = Field(default_factory=dict)
    """`{step_id: checkpoint_id}` recorded before steps marked `rollback_point`."""
    approval_requests: Annotated[dict[str, Any], _merge_two] = Field(default_factory=dict)
    """`{request_id: ApprovalRequest data}` of approvals asked for."""
    compliance_flags: Annotated[list[str], _union_two] = Field(default_factory=list)
    """Flags such as `sla_breached`, `loop_limit_reached`, `circuit_open`."""
    rollback_count: int = 0
    """Rollbacks so far; re-executed steps get fresh idempotency keys after each one."""
    audit_head: Annotated[str | None, _latest_head] = None
    """Hash of the run's latest audit-ledger entry (the ledger itself lives outside state)."""
    decided_at: float | None = None
    """Epoch time of the orchestrator's latest dispatch (the request time of approvals)."""
    control: str | None = None
    """A lifecycle request being carried out: `pause`, `cancel`, `cancel_compensate`,
    `rollback`."""
    triggered_steps: Annotated[list[str], _union_two] = Field(default_factory=list)
    """Error-handler (or on_reject) steps a failure called; the scheduler runs them."""
    handled_failures: Annotated[list[str], _union_two] = Field(default_factory=list)
    """Failed steps whose failure was handled (handlers ran): they count as skipped."""
    compensation_plan: list[list[str]] | None = None
    """`[[step_id, action], ...]` still to run, newest step first, while compensating."""
    compensations: Annotated[dict[str, Any], _merge_two] = Field(default_factory=dict)
    """`{"step_id:action": {status, error, attempts}}` of compensations that ran."""
    outcome_after_compensation: str | None = None
    """Status the run ends with once compensation is done (`failed`, `cancelled`,
    `paused` for a rollback)."""
    rollback_to: str | None = None
    """Rollback point a rollback step or `rollback --to` asked for."""
    token_usage: Annotated[dict[str, Any], _sum_counts] = Field(default_factory=dict)
    """`{input_tokens, output_tokens, total_tokens, model_calls}` over the run's model calls."""
    fanout_plans: Annotated[dict[str, Any], _merge_two] = Field(default_factory=dict)
    """`{step_id: [subtask, ...]}` of fan-out steps whose plan is made."""
    worker_results: GrowingDict = Field(default_factory=dict)
    """`{"step_id#n": {status, output, error}}` of the fan-out workers that finished."""
