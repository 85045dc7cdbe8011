"""LangChain callbacks see the workflow's shape: a `step:<id>` child run per step, tagged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.errors import GraphRecursionError

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from state import AdvancedWorkflow, WorkflowStatus


class Recorder(BaseCallbackHandler):
    """Records every run a LangChain tracer would see: name, parent, tags, metadata, end."""

    def __init__(self) -> None:
        self.runs: dict[UUID, dict[str, Any]] = {}

    def _start(self, run_id: UUID, parent: UUID | None, label: str, **kw: Any) -> None:
        self.runs[run_id] = {
            "name": label,
            "parent": parent,
            "tags": kw.get("tags") or [],
            "metadata": kw.get("metadata") or {},
            "error": None,
        }

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        self._start(run_id, parent_run_id, kw.pop("name", None) or "", **kw)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
        self.runs[run_id]["error"] = error

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        self._start(run_id, parent_run_id, "chat_model", **kw)

    def on_tool_start(
        self,
        serialized: Any,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kw: Any,
    ) -> None:
        self._start(run_id, parent_run_id, f"tool:{serialized.get('name')}", **kw)

    def named(self, name: str) -> dict[str, Any]:
        """The one run called `name`."""
        found = [r for r in self.runs.values() if r["name"] == name]
        assert len(found) == 1, [r["name"] for r in self.runs.values()]
        return found[0]

    def ancestors(self, run: dict[str, Any]) -> list[str]:
        """Names of the run's ancestors, nearest first."""
        names = []
        while run["parent"] in self.runs:
            run = self.runs[run["parent"]]
            names.append(run["name"])
        return names


class ScriptedChatModel(BaseChatModel):
    """Replies from a script (the LLM boundary); tool calls are real tool calls."""

    script: list[AIMessage]
    turn: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **_: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.turn += 1
        reply = self.script[min(self.turn, len(self.script)) - 1]
        return ChatResult(generations=[ChatGeneration(message=reply)])


@tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id} shipped"


def _registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("fetch")
    async def fetch(n: int) -> dict[str, int]:
        return {"n": n + 1}

    @registry.action("sync_double")
    def sync_double(n: int) -> dict[str, int]:
        return {"n": n * 2}

    @registry.action("broken")
    async def broken() -> None:
        raise ConnectionError("the service is down")

    registry.register(
        "shout", RunnableLambda(lambda d: {"text": str(d["n"]).upper()}, name="shout")
    )
    registry.add_tool(lookup)
    registry.add_agent(
        "llm",
        ScriptedChatModel(
            script=[
                AIMessage(
                    "", tool_calls=[{"name": "lookup", "args": {"order_id": "7"}, "id": "c1"}]
                ),
                AIMessage("it shipped"),
            ]
        ),
    )
    return registry


WORKFLOW = AdvancedWorkflow.from_dict(
    {
        "name": "traced",
        "workflow_id": "traced",
        "steps": [
            {
                "step_id": "fetch",
                "action": "fetch",
                "input_mapping": {"n": "input.n"},
                "output_mapping": {"n": "n"},
            },
            {
                "step_id": "fan",
                "step_type": "parallel",
                "dependencies": ["fetch"],
                "parallel_steps": [
                    {
                        "step_id": "double",
                        "step_type": "worker",
                        "action": "sync_double",
                        "input_mapping": {"n": "context.n"},
                    },
                    {
                        "step_id": "shout",
                        "step_type": "worker",
                        "action": "shout",
                        "input_mapping": {"n": "context.n"},
                    },
                ],
            },
            {
                "step_id": "ask",
                "step_type": "react",
                "dependencies": ["fan"],
                "agent_capability": "llm",
                "tools": ["lookup"],
                "input_mapping": {"question": "'where is order 7?'"},
            },
            {
                "step_id": "route",
                "step_type": "conditional",
                "dependencies": ["ask"],
                "conditions": [{"if": "context.n > 0", "then": ["done"]}, {"else": []}],
            },
            {"step_id": "done", "action": "fetch", "input_mapping": {"n": "context.n"}},
        ],
    }
)


@pytest.fixture
async def traced(make_orch: Any) -> Recorder:
    """One run of WORKFLOW with a recording handler, a tag and metadata passed in."""
    recorder = Recorder()
    orch: EnterpriseWorkflowOrchestrator = make_orch(_registry())
    run = await orch.execute_workflow(
        WORKFLOW,
        {"n": 1},
        config={"callbacks": [recorder], "tags": ["mine"], "metadata": {"tenant": "acme"}},
    )
    assert run.status is WorkflowStatus.COMPLETED, run.error
    return recorder


def test_every_step_is_a_child_run_named_after_it(traced: Recorder) -> None:
    """Each step (nested ones too) runs as `step:<id>` tagged with workflow, step and type."""
    for sid, kind in [
        ("fetch", "sequential"),
        ("fan", "parallel"),
        ("double", "worker"),
        ("shout", "worker"),
        ("ask", "react"),
        ("route", "conditional"),
    ]:
        run = traced.named(f"step:{sid}")
        assert {"workflow:traced", f"step:{sid}", f"step_type:{kind}", "mine"} <= set(run["tags"])
        assert run["metadata"]["step_id"] == sid
        assert run["metadata"]["step_type"] == kind
        assert run["metadata"]["workflow_id"] == "traced"
        assert run["metadata"]["tenant"] == "acme"


def test_children_models_and_tools_nest_under_their_step(traced: Recorder) -> None:
    """Container children nest under the container; a Runnable action, the react step's model
    and its tool calls nest under their step."""
    assert traced.ancestors(traced.named("step:double"))[0] == "step:fan"
    assert traced.ancestors(traced.named("shout"))[:2] == ["step:shout", "step:fan"]
    models = [r for r in traced.runs.values() if r["name"] == "chat_model"]
    assert len(models) == 2
    assert all(traced.ancestors(m)[0] == "step:ask" for m in models)
    assert traced.ancestors(traced.named("tool:lookup"))[0] == "step:ask"


async def test_a_failed_step_ends_its_run_with_the_error(make_orch: Any) -> None:
    """A step that fails shows as an errored `step:<id>` run carrying the action's error."""
    recorder = Recorder()
    orch = make_orch(_registry())
    wf = AdvancedWorkflow.from_dict(
        {
            "name": "f",
            "retry_policy": {"max_attempts": 1},
            "steps": [{"step_id": "b", "action": "broken"}],
        }
    )
    run = await orch.execute_workflow(wf, {}, config={"callbacks": [recorder]})
    assert run.status is WorkflowStatus.FAILED
    assert isinstance(recorder.named("step:b")["error"], ConnectionError)


async def test_recursion_limit_passes_through(make_orch: Any) -> None:
    """The caller's recursion_limit replaces the orchestrator's generous default."""
    orch = make_orch(_registry())
    with pytest.raises(GraphRecursionError):
        await orch.execute_workflow(WORKFLOW, {"n": 1}, config={"recursion_limit": 2})
