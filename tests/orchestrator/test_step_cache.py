"""Step caching: `cacheable: true` steps served from a table in the run database, with a TTL,
keyed by workflow version, action and inputs, and audited."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FakeClock

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from state import AdvancedWorkflow, WorkflowDefinitionError, WorkflowStatus


def _workflow(version: str = "1.0", ttl: float = 60.0) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "quote",
            "version": version,
            "steps": [
                {
                    "step_id": "price",
                    "action": "price",
                    "cacheable": True,
                    "cache_ttl": ttl,
                    "input_mapping": {"sku": "input.sku"},
                    "output_mapping": {"price": "amount"},
                },
                {
                    "step_id": "total",
                    "action": "total",
                    "dependencies": ["price"],
                    "input_mapping": {"price": "context.price"},
                },
            ],
        }
    )


class Calls:
    """Counts calls of the priced action."""

    def __init__(self) -> None:
        self.skus: list[str] = []


def _registry(calls: Calls) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("price")
    async def price(sku: str) -> dict[str, Any]:
        calls.skus.append(sku)
        return {"sku": sku, "amount": 10 * len(sku)}

    @registry.action("total")
    async def total(price: int) -> int:
        return price + 1

    return registry


async def _quote(orch: EnterpriseWorkflowOrchestrator, wf: AdvancedWorkflow, sku: str) -> Any:
    run = await orch.execute_workflow(wf, {"sku": sku})
    assert run.status is WorkflowStatus.COMPLETED, run.error
    return run


async def test_second_run_with_the_same_inputs_is_served_from_the_cache(make_orch: Any) -> None:
    """The action runs once; the second run gets the same output and context."""
    calls = Calls()
    orch = make_orch(_registry(calls))
    first = await _quote(orch, _workflow(), "AB")
    second = await _quote(orch, _workflow(), "AB")
    assert calls.skus == ["AB"]
    assert second.context["price"] == first.context["price"] == 20
    assert second.step_results["price"]["reason"] == "served from the step cache"
    assert second.step_results["total"]["status"] == "completed"


async def test_cache_hit_is_in_the_audit_trail(make_orch: Any) -> None:
    """A hit adds a `step_cache_hit` entry with the key; the chain stays intact."""
    orch = make_orch(_registry(Calls()))
    await _quote(orch, _workflow(), "AB")
    second = await _quote(orch, _workflow(), "AB")
    trail = await orch.audit_trail(second.run_id)
    hits = [e for e in trail if e["event"] == "step_cache_hit"]
    assert [e["step_id"] for e in hits] == ["price"]
    assert len(hits[0]["data"]["key"]) == 64
    assert (await orch.verify_audit(second.run_id)).ok


async def test_other_inputs_miss_the_cache(make_orch: Any) -> None:
    """Different inputs are a different key: the action runs again."""
    calls = Calls()
    orch = make_orch(_registry(calls))
    await _quote(orch, _workflow(), "AB")
    run = await _quote(orch, _workflow(), "ABC")
    assert calls.skus == ["AB", "ABC"]
    assert run.context["price"] == 30


async def test_a_new_version_misses_the_cache(make_orch: Any) -> None:
    """The workflow version is part of the key."""
    calls = Calls()
    orch = make_orch(_registry(calls))
    await _quote(orch, _workflow("1.0"), "AB")
    await _quote(orch, _workflow("1.1"), "AB")
    assert calls.skus == ["AB", "AB"]


async def test_entries_expire_after_their_ttl(make_orch: Any) -> None:
    """Past `cache_ttl` seconds (injected clock) the action runs again."""
    calls, clock = Calls(), FakeClock()
    orch = make_orch(_registry(calls), clock=clock)
    await _quote(orch, _workflow(ttl=30), "AB")
    clock.advance(29)
    await _quote(orch, _workflow(ttl=30), "AB")
    clock.advance(2)
    await _quote(orch, _workflow(ttl=30), "AB")
    assert calls.skus == ["AB", "AB"]


async def test_cache_lives_in_the_run_database(any_db: str) -> None:
    """A second orchestrator on the same database (SQLite or Postgres) hits the entry."""
    calls = Calls()
    for _ in range(2):
        orch = EnterpriseWorkflowOrchestrator(registry=_registry(calls), checkpointer=any_db)
        await _quote(orch, _workflow(), "AB")
        await orch.aclose()
    assert calls.skus == ["AB"]


async def test_memory_checkpointer_caches_in_the_process() -> None:
    """With `memory`, the cache is a dict of the orchestrator."""
    calls = Calls()
    orch = EnterpriseWorkflowOrchestrator(registry=_registry(calls), checkpointer="memory")
    await _quote(orch, _workflow(), "AB")
    await _quote(orch, _workflow(), "AB")
    assert calls.skus == ["AB"]


def test_only_action_steps_can_be_cacheable() -> None:
    """`cacheable` on a conditional is a definition error naming the fix."""
    with pytest.raises(WorkflowDefinitionError, match="only action steps can be cached"):
        AdvancedWorkflow.from_dict(
            {
                "name": "bad",
                "steps": [
                    {
                        "step_id": "pick",
                        "step_type": "conditional",
                        "cacheable": True,
                        "conditions": [{"else": ["x"]}],
                    },
                    {"step_id": "x", "action": "noop"},
                ],
            }
        )
