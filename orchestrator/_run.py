"""`RunResult`: what a caller sees of a run, read from its latest checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langgraph.types import StateSnapshot

from policies import redact
from state import AdvancedWorkflow, RunId, WorkflowStatus, unpack
from state._diagram import mermaid_block, workflow_mermaid


@dataclass(frozen=True)
class RunResult:
    """A run as its latest checkpoint shows it."""

    run_id: RunId
    """Id of the run (the LangGraph thread id)."""
    workflow_id: str
    """Id of the workflow."""
    status: WorkflowStatus
    """Where the run stands (`waiting_approval` while an approval is pending)."""
    result: dict[str, Any] | None = None
    """The final context, once completed."""
    error: dict[str, Any] | None = None
    """`{step_id, error_type, message}` of what ended the run, if it failed."""
    completed_steps: list[str] = field(default_factory=list)
    """Steps that completed, in order."""
    failed_steps: list[str] = field(default_factory=list)
    """Steps that failed."""
    skipped_steps: list[str] = field(default_factory=list)
    """Steps that did not run."""
    pending_approval: dict[str, Any] | None = None
    """The `ApprovalRequest` a waiting run needs decided, else None."""
    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    """Every pending request (parallel branches can wait independently)."""
    context: dict[str, Any] = field(default_factory=dict)
    """The run's working data."""
    step_results: dict[str, Any] = field(default_factory=dict)
    """`{step_id: StepResult data}`."""
    started_at: str | None = None
    """When the run started (ISO-8601 UTC)."""
    finished_at: str | None = None
    """When it ended."""
    compliance_flags: list[str] = field(default_factory=list)
    """Flags raised during the run."""
    error_counts: dict[str, int] = field(default_factory=dict)
    """`{error_type: count}` over every failed attempt (retried ones included)."""
    approval_requests: dict[str, Any] = field(default_factory=dict)
    """`{request_id: ApprovalRequest data}` of the approvals asked for so far."""
    definition: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    """The workflow definition the run executes (plain data)."""

    @property
    def statuses(self) -> dict[str, str]:
        """`{step_id: status}` of every step that ran, was skipped or waits for approval."""
        found = {sid: str(r.get("status")) for sid, r in self.step_results.items()}
        for request in self.pending_approvals:
            found[request["step_id"]] = "waiting"
        return found

    def workflow(self) -> AdvancedWorkflow | None:
        """The definition as an `AdvancedWorkflow` (None when the run has none recorded)."""
        return AdvancedWorkflow.from_dict(self.definition) if self.definition else None

    def _repr_markdown_(self) -> str:
        """Jupyter shows a run as a table of its steps and its diagram coloured by status."""
        lines = [f"**run `{self.run_id}`** ({self.workflow_id}): **{self.status.value}**", ""]
        if self.error:
            lines += [f"error: `{self.error.get('error_type')}`: {self.error.get('message')}", ""]
        lines += ["| step | status | attempts | seconds |", "|---|---|---|---|"]
        for sid, status in self.statuses.items():
            result = self.step_results.get(sid, {})
            seconds = result.get("duration_seconds")
            took = f"{seconds:.3f}" if isinstance(seconds, int | float) else ""
            lines.append(f"| {sid} | {status} | {result.get('attempts', '')} | {took} |")
        for request in self.pending_approvals:
            done = [a.get("approver") for a in request.get("approvals", [])]
            left = [a for a in request["approvers"] if a not in done]
            lines.append(
                f"\nwaiting for approval of `{request['step_id']}`: {len(done)} of "
                f"{request['min_approvals']} approvals, waiting for one of: {', '.join(left)}"
            )
        workflow = self.workflow()
        if workflow is not None:
            lines += ["", mermaid_block(workflow_mermaid(workflow, self.statuses))]
        return "\n".join(lines)

    @classmethod
    def from_snapshot(cls, run_id: str, snapshot: StateSnapshot) -> RunResult:
        """Read a run from its LangGraph state snapshot."""
        values: dict[str, Any] = unpack(snapshot.values or {})
        pending = [i.value for i in snapshot.interrupts if isinstance(i.value, dict)]
        status = WorkflowStatus(values.get("status", WorkflowStatus.INITIALIZING))
        if pending and not status.is_terminal:
            # a task without an interrupt was cut off (crash): the run must be resumed first
            interrupted = all(
                task.interrupts or task.result is not None or task.error is not None
                for task in snapshot.tasks
            )
            status = WorkflowStatus.WAITING_APPROVAL if interrupted else WorkflowStatus.RUNNING
        elif status is WorkflowStatus.WAITING_APPROVAL and not pending:
            status = WorkflowStatus.RUNNING  # the approval step has not asked yet (or crashed)
        return cls(
            run_id=RunId(run_id),
            workflow_id=str(values.get("workflow_id", "")),
            status=status,
            result=values.get("final_result"),
            error=values.get("error"),
            completed_steps=list(values.get("completed_steps", [])),
            failed_steps=list(values.get("failed_steps", [])),
            skipped_steps=list(values.get("skipped_steps", [])),
            pending_approval=pending[0] if pending else None,
            pending_approvals=pending,
            context=dict(values.get("context", {})),
            step_results=dict(values.get("step_results", {})),
            started_at=values.get("started_at"),
            finished_at=values.get("finished_at"),
            compliance_flags=list(values.get("compliance_flags", [])),
            error_counts=dict(values.get("error_counts", {})),
            approval_requests=dict(values.get("approval_requests", {})),
            definition=values.get("workflow") or None,
        )

    def to_json(self) -> dict[str, Any]:
        """The `--json` object of the CLI contract, with secrets redacted (`policies.redact`)."""
        shown: dict[str, Any] = redact(
            {
                "run_id": self.run_id,
                "workflow_id": self.workflow_id,
                "status": self.status.value,
                "result": self.result,
                "completed_steps": self.completed_steps,
                "failed_steps": self.failed_steps,
                "skipped_steps": self.skipped_steps,
                "pending_approval": self.pending_approval,
                "error": self.error,
            }
        )
        return shown
