"""LLM routing of conditional steps: a scripted model picks a route with structured output."""

from __future__ import annotations

from typing import Any

from orchestrator import ActionRegistry
from orchestrator.testing import ScriptedChatModel
from state import AdvancedWorkflow, WorkflowStatus


def _setup(script: list[Any], *, adaptive: bool = False) -> tuple[AdvancedWorkflow, ActionRegistry]:
    registry = ActionRegistry()
    registry.add_agent("classifier", ScriptedChatModel(script=script))

    @registry.action("handle")
    def handle(kind: str) -> dict[str, Any]:
        return {"handled": kind}

    route: dict[str, Any] = {"step_id": "route", "step_type": "conditional"}
    if adaptive:
        route["agent_capability"] = "classifier"
        route["conditions"] = [
            {"if": "input.amount > 1000", "then": ["refund"]},
            {"if": "input.urgent", "then": ["outage"]},
            {"else": ["general"]},
        ]
    else:
        route["router"] = {
            "capability": "classifier",
            "routes": {"refund": "money back", "outage": "service is down"},
        }
        route["conditions"] = [{"else": ["general"]}]
        route["input_mapping"] = {"ticket": "input.ticket"}
    steps = [route] + [
        {
            "step_id": s,
            "action": "handle",
            "input_mapping": {"kind": f"'{s}'"},
            "output_mapping": {"kind": "handled"},
        }
        for s in ("refund", "outage", "general")
    ]
    return AdvancedWorkflow.from_dict(
        {"name": "route", "adaptive_routing": adaptive, "steps": steps}
    ), registry


async def test_router_model_picks_a_route(make_orch: Any) -> None:
    """The model's choice runs; the other routes are skipped; the reason is audited."""
    wf, registry = _setup([{"route": "outage", "reason": "site is down"}])
    orch = make_orch(registry)
    run = await orch.execute_workflow(wf, {"ticket": "Everything is down!"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["kind"] == "outage"
    assert sorted(run.skipped_steps) == ["general", "refund"]
    decided = [e for e in await orch.audit_trail(run.run_id) if e["event"] == "route_decided"]
    assert decided[0]["data"]["reason"] == "site is down"
    assert decided[0]["data"]["decided_by"] == "classifier"
    assert decided[0]["data"]["targets"] == ["outage"]


async def test_invalid_choice_falls_back_to_else(make_orch: Any) -> None:
    """A route that does not exist takes `else` and sets the route_invalid flag."""
    wf, registry = _setup([{"route": "teleport", "reason": "why not"}])
    orch = make_orch(registry)
    run = await orch.execute_workflow(wf, {"ticket": "hm"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["kind"] == "general"
    state = await orch.graph.aget_state({"configurable": {"thread_id": run.run_id}})
    assert "route_invalid" in state.values["compliance_flags"]


async def test_adaptive_routing_asks_the_model_when_no_rule_matches(make_orch: Any) -> None:
    """With adaptive_routing, no matching `if` asks the model among the rules' targets."""
    wf, registry = _setup([{"route": "refund", "reason": "asks for money"}], adaptive=True)
    run = await make_orch(registry).execute_workflow(wf, {"amount": 5, "urgent": False})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["kind"] == "refund"


async def test_adaptive_routing_keeps_a_matching_rule(make_orch: Any) -> None:
    """A rule that matches decides without any model call."""
    wf, registry = _setup([{"route": "refund", "reason": "x"}], adaptive=True)
    model = registry.agent("classifier")
    run = await make_orch(registry).execute_workflow(wf, {"amount": 5, "urgent": True})
    assert run.result is not None
    assert run.result["kind"] == "outage"
    assert model.calls == []
