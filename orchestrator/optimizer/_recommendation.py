"""`OptimizationRecommendation`: one change worth making, what it should gain, and the exact
edits that make it.

`specific_changes` are machine-applicable edits of the definition, each
`{"op": "set", "step_id": <id or None for the workflow>, "field": <name or dotted path>,
"from": <old>, "to": <new>}`; `WorkflowOptimizer.apply` carries them out. Advice that needs a
person (add an error handler, check a condition) has no changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class RecommendationType(StrEnum):
    """What a recommendation is about."""

    PARALLELIZATION = "parallelization"
    CACHING = "caching"
    RESOURCES = "resources"
    TIMEOUT = "timeout"
    RELIABILITY = "reliability"
    ROUTING = "routing"
    SLA = "sla"


class Level(StrEnum):
    """Effort to make a change, or risk of making it."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class OptimizationRecommendation:
    """One change worth making to a workflow, with the numbers behind it."""

    id: str
    """Stable id: `type:workflow[:step]`."""
    type: RecommendationType
    """What it is about."""
    description: str
    """What was measured and what to change."""
    expected_improvement: float
    """Share of the mean makespan it should save (0.3 = 30 %); 0 for advice that does not
    speed runs up (reliability, resources)."""
    effort: Level
    """How much work it is to make the change by hand."""
    risk: Level
    """How likely the change alters behaviour."""
    priority: int
    """Higher first; set by the rule that made it."""
    workflow_id: str
    """The workflow concerned."""
    step_id: str | None = None
    """The step concerned, or None for the workflow as a whole."""
    specific_changes: list[dict[str, Any]] = field(default_factory=list)
    """Edits `apply` makes (empty: advice only)."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """The measurements behind it (for parallelization: `baseline_seconds`,
    `predicted_seconds`, `seconds_saved`)."""

    @property
    def applicable(self) -> bool:
        """True when `apply` can make the change."""
        return bool(self.specific_changes)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            **asdict(self),
            "type": self.type.value,
            "effort": self.effort.value,
            "risk": self.risk.value,
        }


def change(step_id: str | None, field_name: str, old: Any, new: Any) -> dict[str, Any]:
    """One `set` edit of `specific_changes`."""
    return {"op": "set", "step_id": step_id, "field": field_name, "from": old, "to": new}
