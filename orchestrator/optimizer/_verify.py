"""Checking a prediction: the measured makespan of runs before and after an optimization.

Every run records the definition it ran, so the runs of an optimized version (one with
`optimized_from`) and of the version it came from are told apart in the run database.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.optimizer._history import RunRecord

TOLERANCE = 0.25
"""A measured makespan within this share of the prediction (or 50 ms) is `as_predicted`."""


@dataclass(frozen=True)
class Verification:
    """How an optimized version did against its prediction."""

    workflow_id: str
    """Id of the workflow."""
    version: str
    """The optimized version."""
    base_version: str
    """The version it was made from."""
    runs_before: int
    """Finished runs of the base version."""
    runs_after: int
    """Finished runs of the optimized version."""
    before_seconds: float | None
    """Mean makespan of the base version's runs."""
    after_seconds: float | None
    """Mean makespan of the optimized version's runs."""
    predicted_seconds: float | None
    """What the optimizer predicted for the optimized version."""
    verdict: str
    """`as_predicted`, `faster_than_predicted`, `slower_than_predicted`, `no_prediction` or
    `not_enough_runs`."""

    @property
    def improvement(self) -> float | None:
        """Measured share of the makespan saved (0.3 = 30 % faster)."""
        if not self.before_seconds or self.after_seconds is None:
            return None
        return 1 - self.after_seconds / self.before_seconds

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data, with `improvement`."""
        return {**asdict(self), "improvement": self.improvement}


def _mean(runs: list[RunRecord]) -> float | None:
    times = [r.makespan_seconds for r in runs if r.makespan_seconds is not None]
    return statistics.fmean(times) if times else None


def verify_runs(runs: list[RunRecord]) -> list[Verification]:
    """One `Verification` per optimized version found among `runs`, by workflow and version."""
    by_version: dict[tuple[str, str], list[RunRecord]] = {}
    for run in runs:
        by_version.setdefault((run.workflow_id, run.version), []).append(run)
    found = []
    for (workflow_id, version), after in sorted(by_version.items()):
        origin = next((r.optimized_from for r in after if r.optimized_from), None)
        if not origin:
            continue
        base = str(origin.get("version"))
        before = by_version.get((workflow_id, base), [])
        predicted = origin.get("predicted_seconds")
        after_s, before_s = _mean(after), _mean(before)
        verdict = _verdict(after_s, predicted)
        if not before or after_s is None:
            verdict = "not_enough_runs"
        found.append(
            Verification(
                workflow_id=workflow_id,
                version=version,
                base_version=base,
                runs_before=len(before),
                runs_after=len(after),
                before_seconds=before_s,
                after_seconds=after_s,
                predicted_seconds=predicted,
                verdict=verdict,
            )
        )
    return found


def _verdict(after: float | None, predicted: float | None) -> str:
    if predicted is None:
        return "no_prediction"
    if after is None:
        return "not_enough_runs"
    if abs(after - predicted) <= max(TOLERANCE * predicted, 0.05):
        return "as_predicted"
    return "faster_than_predicted" if after < predicted else "slower_than_predicted"
