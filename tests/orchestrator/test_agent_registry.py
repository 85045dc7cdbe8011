"""Agents in the registry: model strings created lazily, chat models and graphs as steps."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from orchestrator import ActionRegistry
from orchestrator.testing import ScriptedChatModel
from state import ActionNotFoundError, AdvancedWorkflow, ModelProviderError, WorkflowStatus


def _one(step: dict[str, Any]) -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict({"name": "agents", "steps": [step]})


def test_model_string_needs_no_provider_to_register_validate_or_draw() -> None:
    """Registering, validating and drawing a workflow on a model string import no provider."""
    code = (
        "import sys\n"
        "from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator\n"
        "from state import AdvancedWorkflow\n"
        "r = ActionRegistry(); r.add_agent('writer', 'openai:gpt-4o-mini')\n"
        "wf = AdvancedWorkflow.from_dict({'name': 'w', 'steps': [{'step_id': 'a', "
        "'step_type': 'react', 'agent_capability': 'writer'}]})\n"
        "EnterpriseWorkflowOrchestrator(registry=r, checkpointer='memory').graph"
        ".get_graph().draw_mermaid()\n"
        "assert 'langchain_openai' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


async def test_missing_provider_package_is_named(make_orch: Any) -> None:
    """Running on a model string whose provider is not installed says what to install."""
    registry = ActionRegistry()
    registry.add_agent("writer", "openai:gpt-4o-mini")
    wf = _one({"step_id": "a", "step_type": "react", "agent_capability": "writer"})
    with pytest.raises(ModelProviderError, match=r"pip install langchain-openai"):
        await make_orch(registry).execute_workflow(wf, {})


async def test_model_string_as_capability_without_registration(make_orch: Any) -> None:
    """`agent_capability: "ollama:llama3"` is a model, not an unknown agent name."""
    wf = _one({"step_id": "a", "step_type": "react", "agent_capability": "ollama:llama3"})
    with pytest.raises(ModelProviderError, match=r"pip install langchain-ollama"):
        await make_orch(ActionRegistry()).execute_workflow(wf, {})


def test_not_a_model_string_is_refused() -> None:
    """A string agent must be 'provider:model'."""
    with pytest.raises(TypeError, match="provider:model"):
        ActionRegistry().add_agent("writer", "gpt-4o")


async def test_chat_model_on_a_plain_step(make_orch: Any) -> None:
    """A chat model as an action step's capability gets the inputs as a message."""
    model = ScriptedChatModel(script=["Bonjour"])
    registry = ActionRegistry()
    registry.add_agent("translator", model)
    wf = _one(
        {
            "step_id": "t",
            "agent_capability": "translator",
            "input_mapping": {"question": "input.text"},
            "output_mapping": {"french": "answer"},
        }
    )
    run = await make_orch(registry).execute_workflow(wf, {"text": "Hello"})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["french"] == "Bonjour"
    assert model.calls[0][-1].content == "Hello"


async def test_function_as_react_model_is_a_validation_error(make_orch: Any) -> None:
    """A react step whose capability is a plain function is refused before the run."""
    registry = ActionRegistry()
    registry.add_agent("writer", lambda **_: "x")
    wf = _one({"step_id": "a", "step_type": "react", "agent_capability": "writer"})
    with pytest.raises(ActionNotFoundError, match=r"needs a chat model or graph"):
        await make_orch(registry).execute_workflow(wf, {})


async def test_unknown_tool_is_named_before_the_run(make_orch: Any) -> None:
    """A react step listing an unregistered tool is refused before anything runs."""
    registry = ActionRegistry()
    registry.add_agent("writer", ScriptedChatModel(script=[AIMessage("x")]))
    wf = _one(
        {"step_id": "a", "step_type": "react", "agent_capability": "writer", "tools": ["nope"]}
    )
    with pytest.raises(ActionNotFoundError, match=r"not registered: nope"):
        await make_orch(registry).execute_workflow(wf, {})
