"""The recommendation rules, each on a crafted history, and user rules next to them."""

from __future__ import annotations

from typing import Any

import pytest
from history import crafted_run

from orchestrator import OptimizationRule, WorkflowOptimizer
from orchestrator.optimizer import (
    DEFAULT_RULES,
    OptimizationRecommendation,
    RecommendationType,
    RuleContext,
)
from state import AdvancedWorkflow

OPT = WorkflowOptimizer(checkpointer="memory")


def _wf(*steps: dict[str, Any], **fields: Any) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict({"name": "w", "steps": list(steps), **fields})


async def _recs(
    wf: AdvancedWorkflow, runs: list[dict[str, Any]]
) -> list[OptimizationRecommendation]:
    return await OPT.recommend(wf, await OPT.analyze_workflow_performance(wf, history=runs))


def _of(recs: list[OptimizationRecommendation], kind: RecommendationType) -> list[Any]:
    return [r for r in recs if r.type is kind]


CHAIN = _wf(
    {"step_id": "a", "action": "x", "output_mapping": {"a": "@"}},
    {"step_id": "b", "action": "x", "dependencies": ["a"]},
    {"step_id": "c", "action": "x", "dependencies": ["b"]},
)


async def test_parallelization_improvement_comes_from_measured_times() -> None:
    """b and c read nothing: the critical path drops from 6 s to 3 s of a 6.2 s makespan."""
    runs = [crafted_run({"a": 1.0, "b": 2.0, "c": 3.0}, makespan=6.2) for _ in range(2)]
    (rec,) = _of(await _recs(CHAIN, runs), RecommendationType.PARALLELIZATION)
    assert rec.evidence["seconds_saved"] == pytest.approx(3.0)
    assert rec.evidence["predicted_seconds"] == pytest.approx(3.2)
    assert rec.expected_improvement == pytest.approx(3.0 / 6.2, abs=1e-4)
    assert rec.specific_changes == [
        {"op": "set", "step_id": "b", "field": "dependencies", "from": ["a"], "to": []},
        {"op": "set", "step_id": "c", "field": "dependencies", "from": ["b"], "to": []},
    ]
    assert (rec.priority, rec.risk.value) == (9, "low")


@pytest.mark.parametrize(
    "reads",
    [
        {"v": "results.b"},  # another step's output
        {"v": "context.b_out"},  # a context key the dependency writes
        {"v": "context"},  # the whole context: may read anything
    ],
)
async def test_a_step_reading_its_dependency_keeps_it(reads: dict[str, str]) -> None:
    """Dependencies a step reads (directly, via context, or wholesale) are never dropped."""
    wf = _wf(
        {"step_id": "b", "action": "x", "output_mapping": {"b_out": "@"}},
        {"step_id": "c", "action": "x", "dependencies": ["b"], "input_mapping": reads},
    )
    runs = [crafted_run({"b": 1.0, "c": 1.0}) for _ in range(2)]
    assert _of(await _recs(wf, runs), RecommendationType.PARALLELIZATION) == []


async def test_a_step_keeps_what_it_reads_through_a_dropped_dependency() -> None:
    """`d` reads `a` but depends on it only through `b`: it ends up depending on `a`."""
    wf = _wf(
        {"step_id": "a", "action": "x", "output_mapping": {"a": "@"}},
        {"step_id": "b", "action": "x", "dependencies": ["a"]},
        {"step_id": "d", "action": "x", "dependencies": ["b"], "input_mapping": {"v": "context.a"}},
    )
    runs = [crafted_run({"a": 1.0, "b": 1.0, "d": 1.0}) for _ in range(2)]
    (rec,) = _of(await _recs(wf, runs), RecommendationType.PARALLELIZATION)
    assert {c["step_id"]: c["to"] for c in rec.specific_changes} == {"b": [], "d": ["a"]}


async def test_approvals_and_conditional_targets_keep_their_order() -> None:
    """A step after an approval, or a branch of a conditional, is never moved."""
    wf = _wf(
        {"step_id": "ok", "step_type": "human_approval", "approval": {"approvers": ["kim"]}},
        {"step_id": "pay", "action": "x", "dependencies": ["ok"]},
        {"step_id": "pick", "step_type": "conditional", "dependencies": ["pay"],
         "conditions": [{"else": ["tail"]}]},
        {"step_id": "tail", "action": "x"},
        {"step_id": "last", "action": "x", "dependencies": ["tail"]},
    )  # fmt: skip
    runs = [crafted_run({"ok": 0.0, "pay": 1.0, "pick": 0.0, "tail": 1.0, "last": 1.0})] * 2
    assert _of(await _recs(wf, runs), RecommendationType.PARALLELIZATION) == []


def _priced(sku: str, price: int) -> dict[str, Any]:
    return crafted_run({"price": 0.5}, outputs={"price": {"p": price}}, input={"sku": sku})


PRICE = _wf({"step_id": "price", "action": "price", "input_mapping": {"sku": "input.sku"}})


async def test_deterministic_step_with_repeated_inputs_is_worth_caching() -> None:
    """Same inputs gave the same output: mark the step cacheable."""
    runs = [_priced("A", 1), _priced("A", 1), _priced("B", 2), _priced("A", 1)]
    (rec,) = _of(await _recs(PRICE, runs), RecommendationType.CACHING)
    assert rec.specific_changes == [
        {"op": "set", "step_id": "price", "field": "cacheable", "from": False, "to": True}
    ]
    assert rec.evidence["repeated_runs"] == 2
    assert rec.expected_improvement == pytest.approx(2 / 4 * 0.5 / 0.5)


async def test_different_outputs_for_the_same_inputs_are_not_cached() -> None:
    """A step that answered differently to the same inputs is not deterministic."""
    runs = [_priced("A", 1), _priced("A", 2)]
    assert _of(await _recs(PRICE, runs), RecommendationType.CACHING) == []


async def test_timeout_far_above_p99_is_lowered() -> None:
    """A 300 s timeout on a step whose p99 is 2 s becomes 6 s."""
    wf = _wf({"step_id": "s", "action": "x", "timeout": 300})
    runs = [crafted_run({"s": t}) for t in (1.0, 2.0, 1.5)]
    (rec,) = [r for r in await _recs(wf, runs) if r.id.endswith(":timeout")]
    assert rec.specific_changes[0] | {} == {
        "op": "set", "step_id": "s", "field": "timeout", "from": 300.0, "to": 6.0,
    }  # fmt: skip


async def test_retries_that_never_help_past_attempt_k_are_cut() -> None:
    """Successes came by attempt 2; failures burnt 5 attempts: max_attempts 5 -> 2."""
    wf = _wf({"step_id": "s", "action": "x", "retry_policy": {"max_attempts": 5}})
    ok = {"s": {"status": "completed", "attempts": 2}}
    bad = {"s": {"status": "failed", "attempts": 5, "error_type": "IOError"}}
    runs = [crafted_run({"s": 1.0}, results=r) for r in (ok, ok, bad)]
    (rec,) = [r for r in await _recs(wf, runs) if r.id.endswith(":retries")]
    assert rec.specific_changes[0]["field"] == "retry_policy.max_attempts"
    assert (rec.specific_changes[0]["to"], rec.evidence["wasted_attempts"]) == (2, 3)


async def test_a_cap_the_workload_never_reaches_is_lowered() -> None:
    """max_parallel_steps 50 for at most two concurrent steps becomes 2."""
    wf = _wf(
        {"step_id": "a", "action": "x"},
        {"step_id": "b", "action": "x"},
        {"step_id": "c", "action": "x", "dependencies": ["a", "b"],
         "input_mapping": {"v": "results.a"}},
        max_parallel_steps=50,
    )  # fmt: skip
    runs = [crafted_run({"a": 1.0, "b": 1.0, "c": 1.0}) for _ in range(3)]
    (rec,) = [r for r in await _recs(wf, runs) if r.id.endswith(":cap")]
    assert rec.specific_changes[0]["to"] == 2


async def test_failing_step_with_handlers_is_not_told_to_add_handlers() -> None:
    """Advice for a step that has error_handlers does not ask for error_handlers."""
    wf = _wf(
        {"step_id": "s", "action": "x", "error_handlers": ["h"]},
        {"step_id": "h", "action": "x"},
    )
    failed = {"s": {"status": "failed", "error_type": "IOError"}}
    runs = [crafted_run({"s": 1.0}, results=failed, status="failed") for _ in range(2)]
    (rec,) = [r for r in await _recs(wf, runs) if r.id.endswith(":failing")]
    assert "add error_handlers" not in rec.description
    assert "error_handlers run" in rec.description


async def test_a_rejected_approval_is_not_a_failing_step() -> None:
    """Rejections are decisions: no reliability recommendation for the approval step."""
    wf = _wf({"step_id": "ok", "step_type": "human_approval", "approval": {"approvers": ["k"]}})
    rejected = {"ok": {"status": "failed", "error_type": "ApprovalRejectedError"}}
    runs = [crafted_run({"ok": 0.0}, results=rejected, status="failed") for _ in range(3)]
    assert _of(await _recs(wf, runs), RecommendationType.RELIABILITY) == []


async def test_user_rules_run_with_the_built_in_ones_by_priority() -> None:
    """A rule object added by the user contributes recommendations at its priority."""

    def slow_runs(ctx: RuleContext) -> list[OptimizationRecommendation]:
        return [ctx.rec(RecommendationType.SLA, None, "runs take over a second", what="mine")]

    mine = OptimizationRule("mine", 10, lambda ctx: (ctx.metrics.average_execution_time or 0) > 1,
                            slow_runs)  # fmt: skip
    opt = WorkflowOptimizer(checkpointer="memory", rules=[*DEFAULT_RULES, mine])
    runs = [crafted_run({"a": 1.0, "b": 2.0, "c": 3.0}) for _ in range(2)]
    recs = await opt.recommend(CHAIN, await opt.analyze_workflow_performance(CHAIN, history=runs))
    assert [(r.id, r.priority) for r in recs[:2]] == [
        ("sla:w:*:mine", 10),
        ("parallelization:w:*", 9),
    ]


async def test_step_close_to_its_timeout_gets_a_higher_timeout() -> None:
    """p95 above 80 % of the timeout: raise it to twice the p99."""
    wf = _wf({"step_id": "s", "action": "x", "timeout": 10})
    runs = [crafted_run({"s": t}) for t in (8.5, 9.0)]
    (rec,) = _of(await _recs(wf, runs), RecommendationType.TIMEOUT)
    assert rec.specific_changes[0]["to"] == 18.0


async def test_flaky_step_is_reported() -> None:
    """More than 1.5 attempts per execution on average is flaky (advice only)."""
    wf = _wf({"step_id": "s", "action": "x"})
    runs = [crafted_run({"s": 1.0}, results={"s": {"attempts": 2}}) for _ in range(2)]
    (rec,) = [r for r in await _recs(wf, runs) if r.id.endswith(":flaky")]
    assert (rec.evidence["mean_attempts"], rec.applicable) == (2.0, False)


async def test_sla_breaches_are_reported() -> None:
    """Runs flagged `sla_breached` give one workflow-wide recommendation with the count."""
    wf = _wf({"step_id": "s", "action": "x"})
    runs = [crafted_run({"s": 1.0}, compliance_flags=f) for f in (["sla_breached"], [])]
    (rec,) = _of(await _recs(wf, runs), RecommendationType.SLA)
    assert (rec.step_id, rec.evidence["runs_flagged"]) == (None, 1)


async def test_a_branch_never_taken_is_reported() -> None:
    """A conditional target skipped as `branch not taken` in five runs is reported."""
    wf = _wf(
        {"step_id": "pick", "step_type": "conditional",
         "conditions": [{"if": "input.big", "then": ["big"]}, {"else": ["small"]}]},
        {"step_id": "big", "action": "x"},
        {"step_id": "small", "action": "x"},
    )  # fmt: skip
    skipped = {"status": "skipped", "reason": "branch not taken by conditional 'pick'"}
    runs = [crafted_run({"pick": 0.0, "small": 1.0}, results={"big": skipped})] * 5
    (rec,) = _of(await _recs(wf, runs), RecommendationType.ROUTING)
    assert (rec.step_id, rec.evidence) == ("big", {"conditional": "pick", "runs": 5})
