"""The `plan` command: a planner model writes the workflow for a task, and `--run` runs it.

`orchestrator plan "TASK" --actions MODULE [--planner NAME] [--approver USER ...]` prints the
generated definition as YAML (`--out FILE` writes it; `--json` prints `{workflow, repaired}`).
With `--run` the plan is recorded in the run's audit trail and run; output and exit codes are
those of `run`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from orchestrator._facade import EnterpriseWorkflowOrchestrator

EXIT_OK = 0

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], Any]
"""`add(name, fn, help)` of `build_parser`: a subparser with the common flags."""

RunPrinter = Callable[[Any, bool], int]


def add_commands(add: AddCommand, *, print_run: RunPrinter, parse_input: Any) -> None:
    """Register `plan` with `build_parser`'s `add` helper."""

    def cmd_plan(args: argparse.Namespace) -> int:
        data = parse_input(args.input)
        orch = EnterpriseWorkflowOrchestrator(checkpointer=args.db)

        async def go() -> Any:
            try:
                if args.run:
                    return await orch.execute_task(
                        args.task,
                        data,
                        planner=args.planner,
                        approvers=args.approver or (),
                        run_id=args.run_id,
                        actions_module=args.actions,
                    )
                return await orch.plan_workflow(
                    args.task,
                    planner=args.planner,
                    input_data=data,
                    approvers=args.approver or (),
                    actions_module=args.actions,
                )
            finally:
                await orch.aclose()

        result = asyncio.run(go())
        if args.run:
            return print_run(result, args.json)
        definition = result.workflow.to_data()
        text = yaml.safe_dump(definition, sort_keys=False)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        if args.json:
            print(json.dumps({"workflow": definition, "repaired": result.repaired}, default=str))
        elif not args.out:
            print(text, end="")
        return EXIT_OK

    p = add("plan", cmd_plan, "let a planner model write (and --run) the workflow for a task")
    p.add_argument("task", help="what the workflow should do, in plain words")
    p.add_argument(
        "--actions", required=True, help="module exposing the ActionRegistry named `registry`"
    )
    p.add_argument("--planner", default="planner", help="agent that plans (default: planner)")
    p.add_argument(
        "--approver", action="append", help="require this user's approval before the plan runs"
    )
    p.add_argument("--input", help="run input: a JSON object, or @file.json")
    p.add_argument("--run", action="store_true", help="run the plan after validating it")
    p.add_argument("--run-id", help="id for the run (with --run)")
    p.add_argument("--out", help="write the generated definition to this YAML file")
