"""Commands that watch runs: `metrics` (Prometheus endpoint) and `runs` (the run list).

`add_commands(add)` registers them on the parser `orchestrator._cli.build_parser` builds;
`metrics_endpoint` serves a process's live metrics while a long command (`run`, `resume`,
`approve`, `reject`) works, for `--metrics-port`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest

from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._metrics import DatabaseCollector, MetricsCollector, serve_metrics
from orchestrator._watch import refreshed_runs
from orchestrator.storage import safe_url
from state import InvalidInputError, WorkflowStatus

EXIT_OK = 0

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], Any]
"""`add(name, fn, help)` of `build_parser`: a subparser with the common flags."""


def add_commands(add: AddCommand) -> None:
    """Register `metrics` and `runs` with `build_parser`'s `add` helper."""
    p = add("metrics", cmd_metrics, "serve /metrics for the runs recorded in the database")
    p.add_argument("--port", type=int, help="port to serve on (0: any free port)")
    p.add_argument("--addr", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--once", action="store_true", help="print the metrics once and exit")
    p = add("runs", cmd_runs, "list the runs in the database, newest first")
    p.add_argument("--status", help="only runs with this status (e.g. failed)")
    p.add_argument("--workflow", help="only runs of this workflow id")


def cmd_metrics(args: argparse.Namespace) -> int:
    """`metrics --port N`: serve the database's run gauges until interrupted (`--once`: print)."""
    if args.port is None and not args.once:
        raise InvalidInputError("metrics needs --port N to serve, or --once to print and exit")
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(args.db))
    if args.once:
        print(generate_latest(registry).decode(), end="")
        return EXIT_OK
    stop = threading.Event()
    # SIGINT and SIGTERM stop the server even when the parent ignored SIGINT (a shell's
    # background job inherits SIG_IGN, and Python then never raises KeyboardInterrupt)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = serve_metrics(registry, args.port, args.addr)
    print(f"serving http://{args.addr}:{server.server_port}/metrics (Ctrl-C stops)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    """`runs [--status S] [--workflow ID]`: the run list (`--json`: `{"runs": [...]}`)."""
    valid = [s.value for s in WorkflowStatus]
    if args.status is not None and args.status not in valid:
        raise InvalidInputError(f"unknown --status {args.status!r}; use one of {', '.join(valid)}")
    orch = EnterpriseWorkflowOrchestrator(checkpointer=args.db)
    rows = asyncio.run(refreshed_runs(orch, status=args.status, workflow_id=args.workflow))
    listed = [run_entry(row, time.time()) for row in rows]
    if args.json:
        print(json.dumps({"runs": listed}))
    else:
        print(runs_table(listed) if listed else f"no runs in {safe_url(args.db)}")
    return EXIT_OK


def run_entry(row: dict[str, Any], now: float) -> dict[str, Any]:
    """One run of the list: ids, status, times, duration so far and steps in flight."""
    started, finished = _epoch(row["started_at"]), _epoch(row["finished_at"])
    end = finished if finished is not None else now
    return {
        "run_id": row["run_id"],
        "workflow_id": row["workflow_id"],
        "status": row["status"] or WorkflowStatus.INITIALIZING.value,
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "duration_seconds": round(end - started, 3) if started is not None else None,
        "current_steps": list(row["current_steps"]),
        "holder": row.get("holder"),
    }


def runs_table(entries: list[dict[str, Any]]) -> str:
    """The run list as an aligned text table."""
    header = (
        "RUN ID",
        "WORKFLOW",
        "STATUS",
        "STARTED (UTC)",
        "DURATION",
        "HELD BY",
        "CURRENT STEPS",
    )
    lines = [header] + [
        (
            e["run_id"],
            e["workflow_id"] or "-",
            e["status"],
            (e["started_at"] or "-")[:19].replace("T", " "),
            format_duration(e["duration_seconds"]),
            e.get("holder") or "-",
            ", ".join(e["current_steps"]) or "-",
        )
        for e in entries
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]])
        for line in lines
    )


def format_duration(seconds: float | None) -> str:
    """`0.4s`, `12s`, `3m04s`, `2h05m`, `3d04h`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // sub_size:02d}{sub}"
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


@contextmanager
def metrics_endpoint(
    orch: EnterpriseWorkflowOrchestrator, port: int | None, addr: str = "127.0.0.1"
) -> Iterator[WSGIServer | None]:
    """While the block runs, serve the live metrics of `orch`'s runs on `addr:port`.

    Yields the server (`server.server_port` is the port, useful with `port=0`), or None when
    `port` is None (the command has no `--metrics-port`).
    """
    if port is None:
        yield None
        return
    collector = MetricsCollector()
    orch.add_hooks(collector)
    server = serve_metrics(collector.registry, port, addr)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
