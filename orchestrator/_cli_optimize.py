"""The `optimize` command: metrics and recommendations from past runs; apply; verify.

`optimize [--workflow ID] [--apply OUT.yaml] [--verify] [--json]` analyses the version of each
workflow that its newest run used. `--apply` writes the definition with every applicable
recommendation up to `--max-risk` (default low) made (one workflow: name it with `--workflow`
when the database holds several); `--verify` compares the measured makespan of optimized
versions with their prediction. It exits 0: advice is not a failure, and an empty database
simply has none.
`--json` prints one object: `workflows` (each with `metrics` and `recommendations`),
`recommendations` (all of them), and `applied` / `verification` when asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from orchestrator._cli_observe import format_duration
from orchestrator.optimizer import (
    Level,
    OptimizationRecommendation,
    Verification,
    WorkflowOptimizer,
)
from state import AdvancedWorkflow, InvalidInputError

EXIT_OK = 0

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], Any]
"""`add(name, fn, help)` of `build_parser`: a subparser with the common flags."""


def add_commands(add: AddCommand) -> None:
    """Register `optimize` with `build_parser`'s `add` helper."""
    p = add("optimize", cmd_optimize, "recommendations from past runs; apply and verify them")
    p.add_argument("--workflow", help="only this workflow id")
    p.add_argument("--apply", metavar="OUT.yaml", help="write the optimized definition here")
    p.add_argument(
        "--verify", action="store_true", help="compare optimized versions with their prediction"
    )
    p.add_argument(
        "--max-risk",
        choices=[level.value for level in Level],
        default=Level.LOW.value,
        help="with --apply: apply recommendations up to this risk (default: low)",
    )


async def _optimize(args: argparse.Namespace) -> dict[str, Any]:
    async with WorkflowOptimizer(checkpointer=args.db) as opt:
        out: dict[str, Any] = {"workflows": [], "recommendations": []}
        analysed: list[tuple[AdvancedWorkflow, list[OptimizationRecommendation]]] = []
        for wf in await opt.latest_workflows(args.workflow):
            metrics = await opt.analyze_workflow_performance(wf)
            recs = await opt.recommend(wf, metrics)
            analysed.append((wf, recs))
            out["workflows"].append(
                {
                    "workflow_id": wf.workflow_id,
                    "version": wf.version,
                    "metrics": metrics.to_json(),
                    "recommendations": [r.to_json() for r in recs],
                }
            )
            out["recommendations"] += [r.to_json() for r in recs]
        if getattr(args, "apply", None):
            limit = Level(getattr(args, "max_risk", Level.LOW.value))
            out["applied"] = _apply(opt, analysed, Path(args.apply), args.workflow, limit)
        if getattr(args, "verify", False):
            out["verification"] = [v.to_json() for v in await opt.verify(args.workflow)]
    return out


def _apply(
    opt: WorkflowOptimizer,
    analysed: list[tuple[AdvancedWorkflow, list[OptimizationRecommendation]]],
    path: Path,
    workflow_id: str | None,
    max_risk: Level,
) -> dict[str, Any]:
    if len(analysed) != 1:
        which = ", ".join(wf.workflow_id for wf, _ in analysed) or "none"
        raise InvalidInputError(
            f"--apply writes one workflow but the database has runs of {len(analysed)} "
            f"({which}){f' matching {workflow_id!r}' if workflow_id else ''}; "
            "choose one with --workflow ID"
        )
    wf, recs = analysed[0]
    order = list(Level)
    usable = [r for r in recs if r.applicable and order.index(r.risk) <= order.index(max_risk)]
    if not usable:
        return {"path": None, "recommendations": [], "version": wf.version}
    faster = opt.apply(wf, usable)
    path.write_text(yaml.safe_dump(faster.to_data(), sort_keys=False), encoding="utf-8")
    return {
        "path": str(path),
        "workflow_id": wf.workflow_id,
        "from_version": wf.version,
        "version": faster.version,
        "recommendations": [r.id for r in usable],
        "predicted_seconds": faster.optimized_from.predicted_seconds
        if faster.optimized_from
        else None,
    }


def cmd_optimize(args: argparse.Namespace) -> int:
    """`optimize`: report, and optionally apply and verify (`--json`: one object)."""
    out = asyncio.run(_optimize(args))
    print(json.dumps(out, default=str) if args.json else render(out, args.db, args.workflow))
    return EXIT_OK


def render(out: dict[str, Any], db: str, workflow_id: str | None = None) -> str:
    """The `optimize` output as text."""
    lines: list[str] = []
    if not out["workflows"]:
        which = f" of workflow '{workflow_id}'" if workflow_id else ""
        lines.append(f"no runs{which} recorded yet in {db}; run some workflows, then optimize")
    for block in out["workflows"]:
        lines += [*_workflow_block(block), ""]
    if "applied" in out:
        applied = out["applied"]
        if applied["path"] is None:
            lines.append(
                "nothing to apply: no recommendation within --max-risk has machine-applicable "
                "changes"
            )
        else:
            lines.append(
                f"wrote {applied['path']}: {applied['workflow_id']} version "
                f"{applied['from_version']} -> {applied['version']} "
                f"({', '.join(applied['recommendations'])})"
            )
    for item in out.get("verification", []):
        lines.append(_verification_line(item))
    if "verification" in out and not out["verification"]:
        lines.append("nothing to verify: no runs of an optimized version yet")
    return "\n".join(lines).rstrip()


def _workflow_block(block: dict[str, Any]) -> list[str]:
    m = block["metrics"]
    head = f"workflow {block['workflow_id']} version {block['version']}: {m['runs']} run(s)"
    if not m["step_performance"]:
        return [head, *(f"  {note}" for note in m["notes"])]
    statuses = ", ".join(f"{n} {s}" for s, n in m["by_status"].items())
    lines = [
        f"{head} ({statuses}), {m['success_rate']:.0%} succeeded, {m['error_rate']:.0%} errors, "
        f"makespan mean {_ms(m['average_execution_time'])}, critical path "
        f"{_ms(m['critical_path_seconds'])}, score {m['optimization_score']:.0f}/100"
    ]
    header = ("STEP", "RUNS", "MEAN", "P50", "P95", "FAILED", "RETRIED", "SKIPPED")
    rows = [header] + [
        (
            p["step_id"],
            str(p["runs"]),
            _ms(p["mean_seconds"]),
            _ms(p["p50_seconds"]),
            _ms(p["p95_seconds"]),
            f"{p['failure_rate']:.0%}",
            f"{p['retry_rate']:.0%}",
            f"{p['skip_rate']:.0%}",
        )
        for p in m["step_performance"].values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    for b in m["bottlenecks"]:
        lines.append(
            f"  bottleneck {b['step_id']}: {' and '.join(b['reasons'])} "
            f"(mean {_ms(b['mean_seconds'])}, variance {b['variance']:.3g})"
        )
    recs = block["recommendations"]
    lines.append(f"  recommendations ({len(recs)}):" if recs else "  no recommendations")
    for number, rec in enumerate(recs, 1):
        gain = f", -{rec['expected_improvement']:.0%}" if rec["expected_improvement"] else ""
        lines.append(
            f"  {number}. [{rec['type']} p{rec['priority']}{gain}, effort {rec['effort']}, "
            f"risk {rec['risk']}] {rec['description']}"
        )
        for edit in rec["specific_changes"]:
            where = f"{edit['step_id']}." if edit["step_id"] else ""
            lines.append(f"       set {where}{edit['field']}: {edit['from']} -> {edit['to']}")
    return lines


def _verification_line(item: dict[str, Any]) -> str:
    v = Verification(**{k: val for k, val in item.items() if k != "improvement"})
    measured = f"{_ms(v.before_seconds)} -> {_ms(v.after_seconds)}"
    gain = f" ({v.improvement:.0%} faster)" if v.improvement is not None else ""
    return (
        f"verify {v.workflow_id} {v.base_version} -> {v.version}: {v.runs_before} run(s) before, "
        f"{v.runs_after} after; measured {measured}{gain}, predicted "
        f"{_ms(v.predicted_seconds)}: {v.verdict.replace('_', ' ')}"
    )


def _ms(seconds: float | None) -> str:
    """Step times: `153ms` below a second, else as `format_duration`."""
    if seconds is not None and seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return format_duration(seconds)
