"""The LangGraph Studio / `langgraph dev` entry: the enterprise graph for people who look.

`langgraph dev` brings its own persistence and refuses graphs compiled with one, so this graph
has no checkpointer. Its input is only what a user writes (`StudioInput`: the workflow and its
input context) and its output what a user wants back (`StudioOutput`), not the 30-odd internal
fields of `EnterpriseWorkflowState`. Actions come from the module the definition names under
`actions:` (importable from the project root).

Step events go to the `custom` stream (`step_started`, `step_completed`, `step_waiting`, ...,
each with `step_id` and `step_type`); a run waiting for approval has status
`waiting_approval` and an interrupt naming its approvers; a failed workflow fails the run.

To decide a pending approval, resume the thread with
`Command(resume={"decision": "approve" | "reject", "approver": "<name>", "comment": "..."})`
(in Studio: "Resume" with that JSON). A decision by someone not allowed, or a payload of
another shape, is refused: the run keeps waiting and its interrupt says why under `refused`.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from orchestrator._graph import build_graph
from orchestrator._logging import use_stdlib_logging

use_stdlib_logging()


class StudioInput(TypedDict):
    """What Studio's input form asks for."""

    workflow: Annotated[
        dict[str, Any],
        Field(
            description="The workflow definition (the YAML's content as JSON), naming its "
            "actions module under `actions`, e.g. examples.support_triage.actions"
        ),
    ]
    context: NotRequired[
        Annotated[dict[str, Any], Field(description="The run's input: its starting context")]
    ]


class StudioOutput(TypedDict):
    """What a Studio run returns."""

    workflow_id: str
    run_id: str
    status: str
    final_result: dict[str, Any] | None
    error: dict[str, Any] | None
    completed_steps: list[str]
    failed_steps: list[str]
    skipped_steps: list[str]
    step_results: dict[str, Any]
    compliance_flags: list[str]


graph = build_graph(input_schema=StudioInput, output_schema=StudioOutput, fail_runs=True)
"""The compiled graph `langgraph.json` points at."""
