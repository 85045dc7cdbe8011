"""The LangGraph Studio entry, served by a real `langgraph dev` server on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from state import AdvancedWorkflow

ROOT = Path(__file__).resolve().parents[2]
CLI = shutil.which("langgraph", path=str(Path(sys.executable).parent))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def studio_url() -> Iterator[str]:
    """A `langgraph dev` server on loopback serving langgraph.json of this repository."""
    if CLI is None:
        pytest.fail(
            "langgraph-cli is not installed; install the dev extra: pip install -e '.[dev]'"
        )
    port = _free_port()
    proc = subprocess.Popen(
        [CLI, "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser", "--no-reload"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("langgraph dev did not start within 60 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def _workflow() -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "studio",
            "actions": "examples.support_triage.actions",
            "steps": [
                {
                    "step_id": "classify",
                    "action": "classify_ticket",
                    "input_mapping": {"subject": "input.subject", "body": "input.body"},
                    "output_mapping": {"priority": "priority"},
                },
                {
                    "step_id": "route",
                    "step_type": "conditional",
                    "dependencies": ["classify"],
                    "conditions": [
                        {"if": "context.priority == 'urgent'", "then": ["page"]},
                        {"else": ["skip"]},
                    ],
                },
                {
                    "step_id": "page",
                    "action": "page_on_call",
                    "input_mapping": {
                        "category": "'technical'",
                        "customer": "'ada'",
                        "within_hours": "`1`",
                    },
                },
                {"step_id": "skip", "action": "fetch_history", "input_mapping": {"email": "'x@y'"}},
            ],
        }
    )


async def test_studio_lists_the_enterprise_graph(studio_url: str) -> None:
    """The server exposes the graph with the six nodes of the design."""
    client = get_client(url=studio_url)
    assistants = await client.assistants.search(graph_id="enterprise_workflow")
    assert assistants
    graph = await client.assistants.get_graph(assistants[0]["assistant_id"])
    names = {node["id"] for node in graph["nodes"]}
    assert {
        "orchestrator",
        "parallel_executor",
        "conditional_router",
        "react_agent",
        "human_approval",
        "error_recovery",
    } <= names


async def test_studio_runs_a_workflow_sent_as_graph_input(studio_url: str) -> None:
    """A run started from Studio with `{workflow, context}` completes and routes correctly."""
    client = get_client(url=studio_url)
    thread = await client.threads.create()
    out = await client.runs.wait(
        thread["thread_id"],
        "enterprise_workflow",
        input={
            "workflow": _workflow().to_data(),
            "context": {"subject": "site down", "body": "outage"},
        },
    )
    assert isinstance(out, dict)
    assert out["status"] == "completed"
    assert out["completed_steps"] == ["classify", "route", "page"]
    assert out["skipped_steps"] == ["skip"]


def _approval_workflow() -> dict[str, Any]:
    return {
        "name": "studio approval",
        "actions": "examples.support_triage.actions",
        "steps": [
            {
                "step_id": "classify",
                "action": "classify_ticket",
                "input_mapping": {"subject": "input.subject", "body": "input.body"},
            },
            {
                "step_id": "sign_off",
                "step_type": "human_approval",
                "dependencies": ["classify"],
                "approval": {"approvers": ["ben", "chloe"]},
            },
        ],
    }


async def test_studio_input_and_output_are_the_users_fields(studio_url: str) -> None:
    """Studio's input form asks for `workflow` and `context`; the output is the result and
    statuses, not the internal state."""
    client = get_client(url=studio_url)
    assistant = (await client.assistants.search(graph_id="enterprise_workflow"))[0]
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == {"workflow", "context"}
    assert schemas["input_schema"]["required"] == ["workflow"]
    output = set(schemas["output_schema"]["properties"])
    assert {"status", "final_result", "error", "completed_steps", "skipped_steps"} <= output
    assert not {"started_monotonic", "audit_head", "workflow_key"} & output


async def test_studio_stream_names_each_step(studio_url: str) -> None:
    """The custom stream carries step events with ids and types, sequential steps included."""
    client = get_client(url=studio_url)
    thread = await client.threads.create()
    events = []
    async for part in client.runs.stream(
        thread["thread_id"],
        "enterprise_workflow",
        input={"workflow": _workflow().to_data(), "context": {"subject": "down", "body": "x"}},
        stream_mode=["custom", "updates"],
    ):
        if part.event == "custom":
            events.append(part.data)
    started = [(e["step_id"], e["step_type"]) for e in events if e["event"] == "step_started"]
    assert started == [("classify", "sequential"), ("page", "sequential")]
    assert {"event": "route", "step_id": "route", "targets": ["page"]}.items() <= next(
        e for e in events if e["event"] == "route"
    ).items()
    assert events[-1]["event"] == "run_finished"


async def test_studio_waits_for_approval_and_refuses_a_bad_approver(studio_url: str) -> None:
    """A waiting run says `waiting_approval` and whom it waits for; an approver not on the
    list is refused with a message and the run keeps waiting; an allowed one completes it."""
    client = get_client(url=studio_url)
    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(
        thread,
        "enterprise_workflow",
        input={"workflow": _approval_workflow(), "context": {"subject": "a", "body": "b"}},
    )
    state = await client.threads.get_state(thread)
    assert state["values"]["status"] == "waiting_approval"
    [pending] = state["interrupts"]
    assert pending["value"]["approvers"] == ["ben", "chloe"]
    await client.runs.wait(
        thread,
        "enterprise_workflow",
        command={"resume": {"decision": "approve", "approver": "mallory"}},
    )
    state = await client.threads.get_state(thread)
    assert state["values"]["status"] == "waiting_approval"
    [pending] = state["interrupts"]
    assert (
        "'mallory' may not decide this approval; allowed approvers: ben, chloe"
        in (pending["value"]["refused"])
    )
    out = await client.runs.wait(
        thread,
        "enterprise_workflow",
        command={"resume": {"decision": "approve", "approver": "chloe", "comment": "fine"}},
    )
    assert isinstance(out, dict)
    assert out["status"] == "completed"
    assert out["completed_steps"] == ["classify", "sign_off"]


async def test_a_failed_workflow_fails_the_studio_run(studio_url: str) -> None:
    """A workflow that fails ends its Studio run in error, with the step and error named."""
    client = get_client(url=studio_url)
    thread = (await client.threads.create())["thread_id"]
    workflow = {
        "name": "studio failing",
        "actions": "examples.support_triage.actions",
        "retry_policy": {"max_attempts": 1},
        "steps": [{"step_id": "oops", "action": "page_on_call", "input_mapping": {}}],
    }
    run = await client.runs.create(
        thread, "enterprise_workflow", input={"workflow": workflow, "context": {}}
    )
    await client.runs.join(thread, run["run_id"])
    finished = await client.runs.get(thread, run["run_id"])
    assert finished["status"] == "error"
    state = await client.threads.get_state(thread)
    assert state["values"]["status"] == "failed"
    assert state["values"]["error"]["step_id"] == "oops"
