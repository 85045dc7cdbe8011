"""`AdvancedWorkflow`: a whole workflow definition, validated at construction."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from state._diagram import mermaid_block, workflow_mermaid
from state._enums import StepId
from state._errors import DefinitionProblem, WorkflowDefinitionError
from state._field_docs import DocumentedModel
from state._retry_policy import RetryPolicy
from state._step import WorkflowStep
from state._validation import collect_problems, pydantic_problems


class SlaTargets(DocumentedModel):
    """Service-level targets of a workflow; a breach is flagged, and enforced on request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_duration_seconds: Annotated[float, Field(gt=0)] | None = None
    """Target duration of a whole run."""
    steps: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    """`{step_id: max_seconds}` per-step targets."""
    enforce: bool = False
    """When true a breach fails the run instead of only flagging it."""
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    """Model tokens (input plus output, over every model call of the run) a run may use; a
    run that exceeds it fails with `TokenBudgetError`."""


class OptimizedFrom(BaseModel):
    """Where an optimized definition came from (set by `WorkflowOptimizer.apply`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    """The version the optimizer started from."""
    recommendations: list[str] = Field(default_factory=list)
    """Ids of the recommendations applied."""
    baseline_seconds: float | None = None
    """Mean measured makespan of the runs of `version`."""
    predicted_seconds: float | None = None
    """Makespan the optimizer predicted for this version."""


def _as_raw(data: Mapping[str, Any]) -> dict[str, Any]:
    """The definition with any already-built steps turned back into plain data."""
    steps = data.get("steps")
    if isinstance(steps, list | tuple):
        steps = [
            s.model_dump(mode="json", by_alias=True, exclude_none=True)
            if isinstance(s, BaseModel)
            else s
            for s in steps
        ]
        return {**data, "steps": steps}
    return dict(data)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "workflow"


_NO_KEY = object()
"""No odd key was found (a key can be None in YAML: `?` alone)."""


class AdvancedWorkflow(DocumentedModel):
    """A workflow definition: steps and the policies that govern them.

    Construction validates everything and raises one `WorkflowDefinitionError` listing every
    problem found.

    Example:
        ```python
        wf = AdvancedWorkflow(name="Greet", steps=[WorkflowStep(step_id="hi", action="say")])
        ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    workflow_id: str = ""
    """Stable id; defaults to a slug of `name`."""
    name: str = Field(min_length=1)
    """Human-readable name."""
    description: str = ""
    """What the workflow does."""
    version: str = "1.0"
    """Version of this definition."""
    actions: str | None = None
    """Module exposing an `ActionRegistry` named `registry` (e.g. `examples.support.actions`)."""
    steps: list[WorkflowStep]
    """The steps; order does not matter, dependencies do."""
    global_variables: dict[str, Any] = Field(default_factory=dict)
    """Constants visible to paths and conditions as `globals`."""
    timeout: Annotated[float, Field(gt=0)] | None = None
    """Seconds the whole run may take."""
    max_parallel_steps: Annotated[int, Field(ge=1, le=1000)] = 10
    """How many steps, or children of a parallel container, run at once."""
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    """Default retry policy of every step."""
    sla_targets: SlaTargets = Field(default_factory=SlaTargets)
    """Service-level targets."""
    optimization_enabled: bool = False
    """Record in each run's audit trail which (optimized) version it ran, for
    `orchestrator optimize --verify`."""
    optimized_from: OptimizedFrom | None = None
    """Set by `WorkflowOptimizer.apply`: the base version and the prediction."""
    adaptive_routing: bool = False
    """Let a conditional step with an `agent_capability` ask that chat model to choose among
    its rules' targets when no `if` rule matched."""
    created_at: datetime | None = None
    """When the definition was written."""
    created_by: str | None = None
    """Who wrote it."""
    tags: list[str] = Field(default_factory=list)
    """Free-form labels."""

    def __init__(self, **data: Any) -> None:
        problems = collect_problems(_as_raw(data))
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = pydantic_problems(exc, data) + problems
        else:
            problems += self._merged_policy_problems()
        if problems:
            raise WorkflowDefinitionError(problems)

    def _merged_policy_problems(self) -> list[DefinitionProblem]:
        """A step override can combine with the workflow policy into an invalid one."""
        problems = []
        for index, step in enumerate(self.steps):
            for where, item in [(f"steps[{index}] ({step.step_id})", step)] + [
                (f"steps[{index}] ({step.step_id}) > {child.step_id}", child)
                for child in step.children
            ]:
                merged = self.effective_retry(item)
                try:
                    RetryPolicy.model_validate(merged.model_dump())
                except ValidationError as exc:
                    message = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    problems.append(DefinitionProblem(f"{where}.retry_policy", message))
        return problems

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> AdvancedWorkflow:
        """Build from plain data (parsed YAML or JSON); errors name `source`."""
        if not isinstance(data, Mapping):
            raise WorkflowDefinitionError(
                [DefinitionProblem("definition", f"expected a mapping, got {type(data).__name__}")],
                source=source,
            )
        odd = next((key for key in data if not isinstance(key, str)), _NO_KEY)
        if odd is not _NO_KEY:
            raise WorkflowDefinitionError(
                [
                    DefinitionProblem(
                        "definition",
                        f"field names must be text, got {odd!r}; write `field: value` lines",
                    )
                ],
                source=source,
            )
        try:
            return cls(**dict(data))
        except WorkflowDefinitionError as exc:
            raise WorkflowDefinitionError(exc.problems, source=source) from None

    @classmethod
    def model_validate(cls, obj: Any, *_args: Any, **_kwargs: Any) -> AdvancedWorkflow:
        """Like `from_dict`, so pydantic-style construction reports problems the same way."""
        if isinstance(obj, cls):
            return obj
        return cls.from_dict(obj)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    def model_post_init(self, _context: Any) -> None:
        """Derive `workflow_id` from `name` when it is not given."""
        if not self.workflow_id:
            object.__setattr__(self, "workflow_id", _slug(self.name))

    @cached_property
    def _index(self) -> dict[str, WorkflowStep]:
        return {step.step_id: step for step in self.iter_steps()}

    def _repr_markdown_(self) -> str:
        """Jupyter shows a workflow as its diagram (a Mermaid block) and a one-line summary."""
        count = sum(1 for _ in self.iter_steps())
        head = f"**{self.name}** (`{self.workflow_id}` v{self.version}, {count} steps)\n\n"
        return head + mermaid_block(workflow_mermaid(self))

    def iter_steps(self) -> Iterator[WorkflowStep]:
        """Every step, nested ones included, depth first."""
        stack = list(reversed(self.steps))
        while stack:
            step = stack.pop()
            yield step
            stack.extend(reversed(step.children))

    def step(self, step_id: str) -> WorkflowStep:
        """The step with this id (nested ones included)."""
        return self._index[step_id]

    @property
    def top_level_ids(self) -> list[StepId]:
        """Ids of the steps the scheduler orders (not nested ones)."""
        return [s.step_id for s in self.steps]

    def effective_retry(self, step: WorkflowStep) -> RetryPolicy:
        """The workflow policy overridden by the step's own fields."""
        return step.retry_over(self.retry_policy)

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-compatible data that `from_dict` turns back into this workflow."""
        data = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return {"workflow_id": self.workflow_id, **data}
