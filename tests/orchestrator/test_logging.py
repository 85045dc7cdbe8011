"""Logs through the public contract: `configure_logging` output of real runs, ids, redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from orchestrator import ActionRegistry, StepContext, configure_logging
from orchestrator._logging import LOGGER_NAME, redact_secrets
from state import AdvancedWorkflow, WorkflowStatus


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    """Give the `orchestrator` logger its handlers, level and propagation back."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _registry(secrets: dict[str, Any] | None = None) -> ActionRegistry:
    registry = ActionRegistry()
    calls = {"n": 0}

    @registry.action("flaky")
    async def flaky(ctx: StepContext) -> dict[str, int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("connection reset")
        return {"attempt": ctx.attempt}

    @registry.action("chatty")
    async def chatty(ctx: StepContext) -> None:
        ctx.logger.info("calling_crm", **(secrets or {}))

    return registry


def _one_step(action: str) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "logged",
            "workflow_id": "logged",
            "retry_policy": {"max_attempts": 2, "initial_delay": 0, "jitter": 0},
            "steps": [{"step_id": "s", "action": action}],
        }
    )


async def test_retry_line_carries_workflow_run_and_step_ids(make_orch: Any) -> None:
    """The JSON line of a retried step's failed attempt names the workflow, run and step."""
    stream = io.StringIO()
    configure_logging(json=True, level="DEBUG", stream=stream)
    run = await make_orch(_registry()).execute_workflow(_one_step("flaky"), {})
    assert run.status is WorkflowStatus.COMPLETED
    retry = next(line for line in _json_lines(stream) if line["event"] == "step_retry")
    assert (retry["workflow_id"], retry["run_id"], retry["step_id"]) == ("logged", run.run_id, "s")
    assert retry["level"] == "warning"
    assert retry["attempt"] == 1
    assert "connection reset" in retry["error"]


async def test_run_lines_carry_workflow_and_run_ids(make_orch: Any) -> None:
    """Run-level lines (workflow started and completed) carry the workflow and run ids."""
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    run = await make_orch(_registry()).execute_workflow(_one_step("flaky"), {})
    lines = {line["event"]: line for line in _json_lines(stream)}
    for event in ("workflow_started", "workflow_completed"):
        assert (lines[event]["workflow_id"], lines[event]["run_id"]) == ("logged", run.run_id)


async def test_action_logger_lines_carry_the_step_ids(make_orch: Any) -> None:
    """Lines an action writes through `ctx.logger` carry the workflow, run and step ids."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    run = await make_orch(_registry({"customer": "C-7"})).execute_workflow(_one_step("chatty"), {})
    line = next(line for line in _json_lines(stream) if line["event"] == "calling_crm")
    assert (line["workflow_id"], line["run_id"], line["step_id"]) == ("logged", run.run_id, "s")
    assert line["customer"] == "C-7"


async def test_secret_values_are_redacted_in_json_lines(make_orch: Any) -> None:
    """Values under password, api_key and authorization keys never reach the output."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    secrets = {"password": "hunter2", "crm_api_key": "k-123", "Authorization": "Bearer abc"}
    await make_orch(_registry(secrets)).execute_workflow(_one_step("chatty"), {})
    line = next(line for line in _json_lines(stream) if line["event"] == "calling_crm")
    assert line["password"] == line["crm_api_key"] == line["Authorization"] == "[REDACTED]"
    for secret in ("hunter2", "k-123", "Bearer abc"):
        assert secret not in stream.getvalue()


async def test_nested_secret_values_are_redacted(make_orch: Any) -> None:
    """Secrets inside nested dicts and lists are redacted; their neighbours are kept."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    request = {"url": "https://crm", "headers": {"authorization": "Bearer abc"}}
    accounts = [{"user": "ann", "password": "hunter2"}]
    await make_orch(_registry({"request": request, "accounts": accounts})).execute_workflow(
        _one_step("chatty"), {}
    )
    line = next(line for line in _json_lines(stream) if line["event"] == "calling_crm")
    assert line["request"] == {"url": "https://crm", "headers": {"authorization": "[REDACTED]"}}
    assert line["accounts"] == [{"user": "ann", "password": "[REDACTED]"}]


def test_redaction_leaves_the_logged_data_unchanged() -> None:
    """Redacting copies: the caller's dict still holds its secret afterwards."""
    data = {"crm": {"token": "t-1"}, "items": [{"secret": "s"}]}
    assert redact_secrets(data) == {
        "crm": {"token": "[REDACTED]"},
        "items": [{"secret": "[REDACTED]"}],
    }
    assert data == {"crm": {"token": "t-1"}, "items": [{"secret": "s"}]}


def test_console_mode_is_readable_not_json() -> None:
    """`json=False` renders a readable line: the event and its fields, not a JSON object."""
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    structlog.get_logger(LOGGER_NAME).bind(run_id="R-1").info("workflow_started", api_key="k")
    text = stream.getvalue()
    assert "workflow_started" in text
    assert "run_id=R-1" in text
    assert "api_key=[REDACTED]" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_level_filters_lines() -> None:
    """Lines below the configured level are not written."""
    stream = io.StringIO()
    configure_logging(json=True, level="WARNING", stream=stream)
    log = structlog.get_logger(LOGGER_NAME)
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in _json_lines(stream)] == ["loud"]


def test_stdlib_records_are_rendered_the_same_way() -> None:
    """Plain stdlib logging under `orchestrator` is rendered as JSON lines too."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    logging.getLogger(f"{LOGGER_NAME}.app").warning("disk %s full", "/var")
    (line,) = _json_lines(stream)
    assert (line["event"], line["level"], line["logger"]) == (
        "disk /var full",
        "warning",
        "orchestrator.app",
    )


def test_exceptions_are_rendered_inside_the_json_line() -> None:
    """`log.exception` puts the traceback text in the JSON line."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    try:
        raise ValueError("bad ledger row")
    except ValueError:
        structlog.get_logger(LOGGER_NAME).exception("ledger_failed")
    (line,) = _json_lines(stream)
    assert "ValueError: bad ledger row" in line["exception"]
