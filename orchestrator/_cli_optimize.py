"""The `optimize` command: statistics and recommendations from past runs.

`add_commands(add)` registers it on the parser `orchestrator._cli.build_parser` builds. It
always exits 0: advice is not a failure, and an empty database simply has none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from orchestrator._cli_observe import format_duration
from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._optimizer import Report, WorkflowStats, analyse

EXIT_OK = 0

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], Any]
"""`add(name, fn, help)` of `build_parser`: a subparser with the common flags."""


def add_commands(add: AddCommand) -> None:
    """Register `optimize` with `build_parser`'s `add` helper."""
    p = add("optimize", cmd_optimize, "recommendations from past runs")
    p.add_argument("--workflow", help="only runs of this workflow id")


def cmd_optimize(args: argparse.Namespace) -> int:
    """`optimize [--workflow ID]`: stats and numbered recommendations (`--json`: one object)."""
    orch = EnterpriseWorkflowOrchestrator(checkpointer=args.db)
    report = asyncio.run(analyse(orch, args.workflow))
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(render_report(report, args.db, args.workflow))
    return EXIT_OK


def render_report(report: Report, db: str, workflow_id: str | None = None) -> str:
    """The report as text: a block of stats per workflow, then the numbered recommendations."""
    if not report.workflows:
        which = f" of workflow '{workflow_id}'" if workflow_id else ""
        return f"no runs{which} recorded yet in {db}; run some workflows, then optimize"
    lines: list[str] = []
    for ws in report.workflows:
        lines += [*_workflow_block(ws), ""]
    if report.recommendations:
        lines.append(f"recommendations ({len(report.recommendations)}):")
        for number, rec in enumerate(report.recommendations, 1):
            where = f"{rec.workflow_id}/{rec.step_id}" if rec.step_id else rec.workflow_id
            lines.append(f"  {number}. [{rec.kind.value}] {where}: {rec.message}")
    else:
        lines.append("no recommendations: nothing in these runs stands out")
    return "\n".join(lines)


def _workflow_block(ws: WorkflowStats) -> list[str]:
    statuses = ", ".join(f"{count} {status}" for status, count in ws.by_status.items())
    lines = [
        f"workflow {ws.workflow_id}: {ws.runs} run(s) ({statuses}), "
        f"{ws.success_rate:.0%} succeeded, duration mean "
        f"{format_duration(ws.mean_duration_seconds)} "
        f"p95 {format_duration(ws.p95_duration_seconds)}"
    ]
    header = ("STEP", "RUNS", "FAILED", "SKIPPED", "ATTEMPTS", "MEAN", "P95")
    rows = [header] + [
        (
            st.step_id,
            str(st.runs),
            f"{st.failure_rate:.0%}",
            f"{st.skip_rate:.0%}",
            f"{st.mean_attempts:.2f}" if st.mean_attempts is not None else "-",
            format_duration(st.mean_duration_seconds),
            format_duration(st.p95_duration_seconds),
        )
        for st in ws.steps
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines
