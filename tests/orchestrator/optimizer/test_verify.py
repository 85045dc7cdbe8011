"""Verifying an optimization: measured makespan before and after against the prediction, and
the version each run records with `optimization_enabled`."""

from __future__ import annotations

from typing import Any

import pytest
from history import crafted_run

from orchestrator import ActionRegistry
from orchestrator.optimizer._history import as_records
from orchestrator.optimizer._verify import verify_runs
from state import AdvancedWorkflow


def _runs(version: str, makespan: float, n: int, origin: dict[str, Any] | None = None) -> list:
    definition = {"workflow_id": "w", "version": version, "optimized_from": origin}
    return [crafted_run({"a": makespan}, workflow=definition, workflow_id="w") for _ in range(n)]


@pytest.mark.parametrize(
    ("after", "verdict"),
    [(1.1, "as_predicted"), (2.0, "slower_than_predicted"), (0.5, "faster_than_predicted")],
)
def test_verdict_compares_the_measured_makespan_with_the_prediction(
    after: float, verdict: str
) -> None:
    """Within 25 % of the prediction is `as_predicted`; otherwise faster or slower."""
    origin = {"version": "1.0", "predicted_seconds": 1.0}
    runs = as_records(_runs("1.0", 3.0, 2) + _runs("1.1", after, 2, origin))
    (check,) = verify_runs(runs)
    assert (check.base_version, check.version, check.verdict) == ("1.0", "1.1", verdict)
    assert check.improvement == pytest.approx(1 - after / 3.0)


def test_without_runs_of_the_base_version_there_is_nothing_to_compare() -> None:
    """An optimized version whose base has no runs is `not_enough_runs`."""
    origin = {"version": "1.0", "predicted_seconds": 1.0}
    (check,) = verify_runs(as_records(_runs("1.1", 1.0, 2, origin)))
    assert (check.runs_before, check.verdict, check.improvement) == (0, "not_enough_runs", None)


def test_versions_that_were_not_optimized_are_not_verified() -> None:
    """Runs without `optimized_from` give nothing to verify."""
    assert verify_runs(as_records(_runs("1.0", 1.0, 2) + _runs("2.0", 1.0, 2))) == []


async def test_optimization_enabled_runs_record_the_version_they_used(make_orch: Any) -> None:
    """With `optimization_enabled`, `run_started` carries the version and `optimized_from`."""
    registry = ActionRegistry()
    registry.register("x", lambda: 1)
    base = {"name": "w", "steps": [{"step_id": "a", "action": "x"}]}
    origin = {"version": "1.0", "recommendations": ["parallelization:w:*"],
              "predicted_seconds": 0.2}  # fmt: skip
    tracked = AdvancedWorkflow.from_dict(
        {**base, "version": "1.1", "optimization_enabled": True, "optimized_from": origin}
    )
    orch = make_orch(registry)
    run = await orch.execute_workflow(tracked, {})
    (started,) = [e for e in await orch.audit_trail(run.run_id) if e["event"] == "run_started"]
    assert started["data"]["version"] == "1.1"
    assert started["data"]["optimized_from"]["recommendations"] == ["parallelization:w:*"]
    plain = await orch.execute_workflow(AdvancedWorkflow.from_dict(base), {})
    (started,) = [e for e in await orch.audit_trail(plain.run_id) if e["event"] == "run_started"]
    assert "version" not in started["data"]
