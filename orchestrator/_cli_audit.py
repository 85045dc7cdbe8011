"""`orchestrator audit RUN_ID [--verify] [--format table|jsonl]`: print or check a run's trail.

Exit codes: 0 printed, or the chain is intact; 1 the chain is broken (an entry was altered,
removed or reordered); 2 no such run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from orchestrator._audit import AuditLedger, canonical_json, verify_entries
from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator.storage import sqlite_path
from state import RunNotFoundError, WorkflowStatus, unpack

EXIT_OK, EXIT_TAMPERED = 0, 1
_DETAILS_WIDTH = 60


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `audit` with `build_parser`'s `add(name, fn, help)` helper."""
    p = add("audit", cmd_audit, "print a run's audit trail, or check its hash chain")
    p.add_argument("run_id")
    p.add_argument(
        "--verify",
        action="store_true",
        help="check the hash chain: exit 0 when intact, 1 naming the first bad entry",
    )
    p.add_argument(
        "--format",
        choices=("table", "jsonl"),
        default="table",
        help="table (default, readable) or jsonl (one JSON entry per line, for export)",
    )


def cmd_audit(args: argparse.Namespace) -> int:
    """`audit RUN_ID`: the trail as a table, JSON Lines or JSON; `--verify` checks it."""
    entries, head, finished = asyncio.run(read_trail(args.db, args.run_id))
    if args.verify:
        result = verify_entries(entries, expected_head=head, finished=finished)
        if args.json:
            print(
                json.dumps(
                    {
                        "run_id": args.run_id,
                        "intact": result.ok,
                        "checked": result.checked,
                        "first_bad_seq": result.first_bad_seq,
                        "reason": result.reason,
                    }
                )
            )
        elif result.ok:
            print(f"audit trail intact: {result.checked} entries")
        else:
            print(
                f"audit trail of run {args.run_id} is broken at entry {result.first_bad_seq}: "
                f"{result.reason}"
            )
        return EXIT_OK if result.ok else EXIT_TAMPERED
    if args.json:
        print(json.dumps({"run_id": args.run_id, "entries": entries}, default=str))
    elif args.format == "jsonl":
        print("".join(canonical_json(entry) + "\n" for entry in entries), end="")
    else:
        print(render_table(args.run_id, entries), end="")
    return EXIT_OK


async def read_trail(db: str, run_id: str) -> tuple[list[dict[str, Any]], str | None, bool]:
    """The run's entries, the chain head its latest checkpoint recorded, and whether it ended.

    Raises `RunNotFoundError` when neither the ledger nor the checkpoints know the run (and
    creates no database when there is none).
    """
    if db.startswith("sqlite:///") and not sqlite_path(db).exists():
        raise RunNotFoundError(
            f"no run '{run_id}': there is no run database at {sqlite_path(db)}; pass the "
            "database the run used with --db (or set ORCHESTRATOR_DB)"
        )
    async with EnterpriseWorkflowOrchestrator(checkpointer=db) as orch:
        snapshot = await orch.graph.aget_state({"configurable": {"thread_id": run_id}})
    ledger = AuditLedger.for_url(db)
    try:
        entries = ledger.entries(run_id)
    finally:
        ledger.close()
    values = unpack(snapshot.values or {})
    if not entries and not values:
        raise RunNotFoundError(
            f"no run '{run_id}' in {db}; check the id, or pass the database it ran on with --db"
        )
    head = values.get("audit_head")
    finished = str(values.get("status")) in _FINISHED
    return entries, str(head) if head else None, finished


_FINISHED = frozenset(s.value for s in WorkflowStatus if s.is_terminal)


def render_table(run_id: str, entries: list[dict[str, Any]]) -> str:
    """A readable table of entries: seq, time, actor, event, step, details, short hash."""
    header = ("seq", "time (UTC)", "actor", "event", "step", "details", "hash")
    rows = [header] + [
        (
            str(entry["seq"]),
            str(entry["timestamp"])[:19].replace("T", " "),
            str(entry["actor"]),
            str(entry["event"]),
            str(entry["step_id"] or "-"),
            _details(entry["data"]),
            str(entry["hash"])[:12],
        )
        for entry in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"audit trail of run {run_id}: {len(entries)} entries"]
    for row in rows:
        cells = [row[0].rjust(widths[0])] + [
            c.ljust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _details(data: Any) -> str:
    if isinstance(data, dict):
        text = " ".join(
            f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
            for k, v in data.items()
        )
    else:
        text = str(data)
    return text if len(text) <= _DETAILS_WIDTH else text[: _DETAILS_WIDTH - 3] + "..."
