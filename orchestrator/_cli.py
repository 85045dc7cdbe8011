"""The `orchestrator` command line.

Exit codes: 0 completed (or the command succeeded), 3 waiting for approval or paused,
1 failed / cancelled / timed out, 2 bad definition, bad input or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from nodes import refused_webhooks
from orchestrator._cli_audit import add_commands as add_audit_commands
from orchestrator._cli_db import add_commands as add_db_commands
from orchestrator._cli_errors import explain
from orchestrator._cli_observe import add_commands, metrics_endpoint
from orchestrator._cli_optimize import add_commands as add_optimize_commands
from orchestrator._cli_plan import add_commands as add_plan_commands
from orchestrator._facade import EnterpriseWorkflowOrchestrator
from orchestrator._follow import follow_run
from orchestrator._loader import load_workflow, unregistered_actions, workflow_schema
from orchestrator._logging import configure_logging
from orchestrator._picture import render_workflow
from orchestrator._run import RunResult
from orchestrator._watch import watch_run
from orchestrator.storage import default_db
from policies import Limits, check_value
from state import (
    DefinitionProblem,
    InvalidInputError,
    WorkflowDefinitionError,
    WorkflowStatus,
)
from state._diagram import workflow_mermaid

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3

_EXIT_FOR = {
    WorkflowStatus.COMPLETED: EXIT_OK,
    WorkflowStatus.WAITING_APPROVAL: EXIT_WAITING,
    WorkflowStatus.PAUSED: EXIT_WAITING,
    WorkflowStatus.RUNNING: EXIT_WAITING,
    WorkflowStatus.INITIALIZING: EXIT_WAITING,
    WorkflowStatus.ROLLBACK: EXIT_WAITING,
}


def exit_code(run: RunResult) -> int:
    """The exit code of the contract for a run's status."""
    return _EXIT_FOR.get(run.status, EXIT_FAILED)


def parse_input(text: str | None) -> dict[str, Any]:
    """`--input`: a JSON object, inline or `@file.json`."""
    if text is None:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read --input file {text[1:]}: {exc}") from None
    limits = Limits.from_settings()
    if len(text) > limits.max_input_bytes:
        raise InvalidInputError(
            f"--input is {len(text)} characters, over the limit of {limits.max_input_bytes} "
            "bytes; pass a reference (a path or URL) instead of the data, or raise "
            "ORCHESTRATOR_LIMIT_MAX_INPUT_BYTES"
        )
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"--input is not valid JSON ({exc.msg} at column {exc.colno}); "
            """pass an object such as '{"ticket_id": "T-1"}'"""
        ) from None
    except RecursionError:
        raise InvalidInputError(
            f"--input is nested deeper than {limits.max_nesting_depth} levels; flatten it"
        ) from None
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        raise InvalidInputError(
            f"--input holds a number JSON output cannot carry ({exc}); pass it as a string"
        ) from None
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"--input must be a JSON object, got {type(value).__name__}; "
            """wrap it, e.g. '{"value": ...}'"""
        )
    check_value(value, limits, what="--input")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _print_run(run: RunResult, as_json: bool) -> int:
    shown = run.to_json()  # redacted
    if as_json:
        print(json.dumps(shown, default=str))
        return exit_code(run)
    print(f"run {run.run_id} ({run.workflow_id}): {run.status.value}")
    for label, ids in (
        ("completed", run.completed_steps),
        ("skipped", run.skipped_steps),
        ("failed", run.failed_steps),
    ):
        if ids:
            print(f"  {label:<10} {', '.join(ids)}")
    if error := shown["error"]:
        where = f" in step '{error['step_id']}'" if error.get("step_id") else ""
        print(f"  error{where}: {error.get('error_type')}: {error.get('message')}")
    for request in run.pending_approvals:
        print("  " + approval_line(request))
        print(f"    decide with: orchestrator approve {run.run_id} --as USER")
    if shown["result"] is not None:
        print(
            "  result: " + json.dumps(shown["result"], default=str, indent=2).replace("\n", "\n  ")
        )
    if run.status is WorkflowStatus.RUNNING:
        print(
            "  unless a process is executing it (`orchestrator runs` shows who holds it), "
            f"it was interrupted; continue it with: orchestrator resume {run.run_id}"
        )
    return exit_code(run)


def approval_line(request: dict[str, Any]) -> str:
    """`approval of 'manager': 1 of 2 approvals, waiting for one of: ben, chloe (request ...)`."""
    done = [a.get("approver") for a in request.get("approvals", [])]
    left = [a for a in request["approvers"] if a not in done]
    return (
        f"waiting for approval of '{request['step_id']}': {len(done)} of "
        f"{request['min_approvals']} approvals, waiting for one of: {', '.join(left)} "
        f"(request {request['request_id']})"
    )


def _orchestrator(args: argparse.Namespace) -> EnterpriseWorkflowOrchestrator:
    if args.db.startswith("sqlite://") and ":memory:" in args.db:
        raise InvalidInputError(
            f"--db {args.db} lives only inside one process: the run could never be resumed, "
            "approved or inspected by another command; use --db memory for a throwaway run, "
            "or a file: --db sqlite:///runs.sqlite"
        )
    hosts = os.environ.get("ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS", "")
    return EnterpriseWorkflowOrchestrator(checkpointer=args.db, webhook_allow_hosts=hosts)


async def _with_orch(
    args: argparse.Namespace,
    action: Callable[[EnterpriseWorkflowOrchestrator], Awaitable[RunResult]],
    *,
    queued_ok: bool = True,
) -> int:
    orch = _orchestrator(args)
    with metrics_endpoint(orch, getattr(args, "metrics_port", None)):
        try:
            run = await action(orch)
        finally:
            await orch.aclose()
    code = _print_run(run, args.json)
    # a detached run's command succeeded once its job is queued; `status` of a pending run
    # is not finished (3), like a running one
    return EXIT_OK if queued_ok and run.status is WorkflowStatus.PENDING else code


def cmd_run(args: argparse.Namespace) -> int:
    """`run WORKFLOW [--detach]`: start a run and drive it until it finishes or waits (or
    queue it for workers)."""
    workflow = load_workflow(args.workflow)
    data = parse_input(args.input)
    if args.detach:
        return asyncio.run(_with_orch(args, lambda o: o.submit(workflow, data, run_id=args.run_id)))
    if args.follow:
        progress = sys.stderr if args.json else sys.stdout
        return asyncio.run(
            _with_orch(
                args,
                lambda o: follow_run(o, workflow, data, run_id=args.run_id, out=progress),
            )
        )
    args.run_id = args.run_id or uuid.uuid4().hex  # known here, so a fault can name it
    return asyncio.run(
        _with_orch(args, lambda o: o.execute_workflow(workflow, data, run_id=args.run_id))
    )


def cmd_resume(args: argparse.Namespace) -> int:
    """`resume RUN_ID`: continue an interrupted run."""
    return asyncio.run(_with_orch(args, lambda o: o.resume(args.run_id)))


def cmd_status(args: argparse.Namespace) -> int:
    """`status RUN_ID [--watch]`: where a run stands (`--watch`: follow it until it stops)."""
    if args.watch:
        progress = sys.stderr if args.json else sys.stdout
        return asyncio.run(
            _with_orch(
                args, lambda o: watch_run(o, args.run_id, out=progress, interval=args.interval)
            )
        )
    if args.wait:
        return asyncio.run(_wait(args))
    return asyncio.run(_with_orch(args, lambda o: o.status(args.run_id), queued_ok=False))


async def _wait(args: argparse.Namespace) -> int:
    """`status --wait`: block until the run settles; exit 3 and say so on timeout."""
    orch = _orchestrator(args)
    try:
        run = await orch.wait(args.run_id, timeout=args.timeout)
    finally:
        await orch.aclose()
    code = _print_run(run, args.json)
    if run.status in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.INITIALIZING):
        print(
            f"timed out after {args.timeout:g}s: run {args.run_id} is still {run.status.value}",
            file=sys.stderr,
        )
        return EXIT_WAITING
    return code


def cmd_worker(args: argparse.Namespace) -> int:
    """`worker`: execute queued runs until SIGTERM, then drain."""
    from orchestrator.workers._queue import require_postgres
    from orchestrator.workers._worker import Worker

    require_postgres(args.db)
    if args.concurrency < 1:
        raise InvalidInputError(f"--concurrency must be at least 1, got {args.concurrency}")
    worker = Worker(args.db, concurrency=args.concurrency, grace=args.grace)
    asyncio.run(worker.run(args.metrics_port))
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    """`approve RUN_ID --as USER`: approve and continue."""
    return asyncio.run(
        _with_orch(
            args,
            lambda o: o.approve(args.run_id, args.user, args.comment, request_id=args.request_id),
        )
    )


def cmd_reject(args: argparse.Namespace) -> int:
    """`reject RUN_ID --as USER`: reject and continue."""
    return asyncio.run(
        _with_orch(
            args,
            lambda o: o.reject(args.run_id, args.user, args.reason, request_id=args.request_id),
        )
    )


def cmd_pause(args: argparse.Namespace) -> int:
    """`pause RUN_ID`: stop at the next step boundary."""
    return asyncio.run(_with_orch(args, lambda o: o.pause(args.run_id)))


def cmd_cancel(args: argparse.Namespace) -> int:
    """`cancel RUN_ID [--compensate]`: stop for good."""
    return asyncio.run(
        _with_orch(args, lambda o: o.cancel(args.run_id, compensate=args.compensate))
    )


def cmd_rollback(args: argparse.Namespace) -> int:
    """`rollback RUN_ID --to POINT`: compensate, restore, leave paused."""
    return asyncio.run(_with_orch(args, lambda o: o.rollback(args.run_id, args.to)))


def cmd_sweep(args: argparse.Namespace) -> int:
    """`sweep`: decide approvals waiting past their deadline."""

    async def go() -> list[RunResult]:
        orch = _orchestrator(args)
        try:
            return await orch.sweep()
        finally:
            await orch.aclose()

    runs = asyncio.run(go())
    if args.json:
        print(json.dumps({"swept": [r.to_json() for r in runs]}, default=str))
    else:
        print(f"decided {len(runs)} expired approval(s)")
        for run in runs:
            print(f"  {run.run_id}: {run.status.value}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """`validate WORKFLOW`: check a definition (and its fixed webhook hosts), and that its
    `actions:` module registers every action it names."""
    workflow = load_workflow(args.workflow)
    if workflow.actions:
        problems = unregistered_actions(workflow)
        if problems:
            raise WorkflowDefinitionError(problems, source=args.workflow)
    count = sum(1 for _ in workflow.iter_steps())
    hosts = os.environ.get("ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS")
    allowed = frozenset(h.strip().lower() for h in (hosts or "").split(",") if h.strip())
    if refused := refused_webhooks(workflow.iter_steps(), workflow.global_variables, allowed):
        if hosts is not None:  # an allow-list is configured here: the run would be refused
            problems = [DefinitionProblem(f"steps ({sid}).webhook", msg) for sid, msg in refused]
            raise WorkflowDefinitionError(problems, source=args.workflow)
        for _, message in refused:
            print(
                f"warning: {message} (ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS is unset)", file=sys.stderr
            )
    if args.json:
        print(json.dumps({"valid": True, "workflow_id": workflow.workflow_id, "steps": count}))
    else:
        print(f"{args.workflow}: valid ({workflow.workflow_id}, {count} steps)")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    """`graph WORKFLOW`: print a Mermaid flowchart of its steps (or of the StateGraph)."""
    workflow = load_workflow(args.workflow)
    if args.langgraph:
        print(
            EnterpriseWorkflowOrchestrator(checkpointer="memory").graph.get_graph().draw_mermaid()
        )
    elif args.format == "mermaid":
        print(workflow_mermaid(workflow), end="")
    else:
        out = Path(args.output or Path(args.workflow).with_suffix(f".{args.format}").name)
        out.write_bytes(render_workflow(workflow, args.format))
        print(f"wrote {out}")
    return EXIT_OK


def cmd_schema(_args: argparse.Namespace) -> int:
    """`schema`: print the JSON Schema of a workflow definition."""
    print(json.dumps(workflow_schema(), indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=default_db(),
        help="checkpointer URL (default: $ORCHESTRATOR_DB or sqlite:///.orchestrator/runs.sqlite)",
    )
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("--log-level", default="WARNING", help="log level on stderr")
    common.add_argument("--log-json", action="store_true", help="logs as JSON lines")
    parser = argparse.ArgumentParser(
        prog="orchestrator", description="Durable enterprise workflows on LangGraph."
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> Any:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=fn)
        return p

    p = add("run", cmd_run, "run a workflow until it finishes or waits")
    p.add_argument("workflow", help="YAML or JSON definition")
    p.add_argument("--input", help="run input: a JSON object, or @file.json")
    p.add_argument("--run-id", help="id for the run (default: random)")
    p.add_argument(
        "--detach",
        action="store_true",
        help="queue the run for workers (`orchestrator worker`, Postgres) and exit at once",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="print step events as they happen (on stderr with --json)",
    )
    _metrics_port(p)
    p = add("resume", cmd_resume, "continue an interrupted run")
    p.add_argument("run_id")
    _metrics_port(p)
    p = add("status", cmd_status, "show where a run stands")
    p.add_argument("run_id")
    p.add_argument("--watch", action="store_true", help="follow the run until it finishes or waits")
    p.add_argument(
        "--interval", type=float, default=0.5, help="seconds between looks (with --watch)"
    )
    p.add_argument(
        "--wait", action="store_true", help="block until the run is neither pending nor running"
    )
    p.add_argument("--timeout", type=float, help="with --wait: give up after SECONDS (exit 3)")
    p = add("worker", cmd_worker, "execute queued runs (Postgres) until SIGTERM, then drain")
    p.add_argument("--concurrency", type=int, default=4, help="runs advanced at once")
    p.add_argument(
        "--grace", type=float, default=30.0, help="seconds a drain waits for steps in flight"
    )
    _metrics_port(p)
    for name, fn, note in (
        ("approve", cmd_approve, "--comment"),
        ("reject", cmd_reject, "--reason"),
    ):
        p = add(name, fn, f"{name} a pending approval and continue the run")
        p.add_argument("run_id")
        p.add_argument("--as", dest="user", required=True, help="who decides")
        p.add_argument(note, dest=note.lstrip("-"), help="why")
        p.add_argument("--request-id", help="which request, when several are pending")
        _metrics_port(p)
    for name, fn, help_ in (
        ("pause", cmd_pause, "stop a run at its next step boundary"),
        ("cancel", cmd_cancel, "stop a run for good"),
    ):
        p = add(name, fn, help_)
        p.add_argument("run_id")
        if name == "cancel":
            p.add_argument("--compensate", action="store_true", help="run compensations first")
    p = add("rollback", cmd_rollback, "compensate and restore a run to a rollback point")
    p.add_argument("run_id")
    p.add_argument("--to", required=True, help="rollback point (a step with rollback_point)")
    add("sweep", cmd_sweep, "decide approvals waiting past their deadline")
    add("validate", cmd_validate, "check a definition").add_argument("workflow")
    p = add("graph", cmd_graph, "print a Mermaid flowchart of a workflow, or draw it")
    p.add_argument("workflow")
    p.add_argument("--langgraph", action="store_true", help="draw the compiled StateGraph")
    p.add_argument(
        "--format",
        choices=["mermaid", "png", "svg"],
        default="mermaid",
        help="mermaid text (default), or a picture drawn offline by mmdc or matplotlib",
    )
    p.add_argument("-o", "--output", help="picture file (default: WORKFLOW name + .png/.svg)")
    add("schema", cmd_schema, "print the JSON Schema of a workflow definition")
    add_audit_commands(add)
    add_commands(add)
    add_optimize_commands(add)
    add_plan_commands(add, print_run=_print_run, parse_input=parse_input)
    add_db_commands(sub, common)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("enterprise-workflow-orchestrator")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def _metrics_port(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metrics-port",
        type=_port,
        help="serve this process's metrics on http://127.0.0.1:PORT/metrics while it works",
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; use 0-65535 (0: any)")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `orchestrator` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if os.getcwd() not in sys.path:  # `actions:` modules are importable from the cwd
        sys.path.insert(0, os.getcwd())
    try:
        configure_logging(json=args.log_json or None, level=args.log_level)
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except WorkflowDefinitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 -- every error gets one line
        message, code = explain(
            exc, command=getattr(args, "command", None), run_id=getattr(args, "run_id", None)
        )
        if str(getattr(args, "log_level", "")).upper() == "DEBUG":
            traceback.print_exc()
        print(f"error: {message}", file=sys.stderr)
        return code
    return code


if __name__ == "__main__":
    raise SystemExit(main())
