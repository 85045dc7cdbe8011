"""The `react_agent` node: a reason/act loop with a chat model and registered tools.

The model named by `agent_capability` is bound to the step's `tools`; each iteration it either
calls tools (their results go back as tool messages) or answers. The loop stops at the answer
or after `max_iterations`; the trace of thoughts, tool calls and observations is the output.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from nodes._definition import step_from_data
from nodes._outcome import StepOutcome
from nodes._plain import to_plain
from nodes._report import finish
from nodes._services import clock_of, hooks_of, services_for
from nodes._task import StepTask
from nodes._trace import step_run
from policies import fill_placeholders, map_outputs
from state import StepFailedError, StepStatus, WorkflowStep


def _prompt(step: WorkflowStep, task: StepTask) -> list[BaseMessage]:
    namespace = task.get("namespace") or {}
    messages: list[BaseMessage] = []
    if step.prompt:
        messages.append(SystemMessage(fill_placeholders(step.prompt, namespace)))
    inputs = task.get("inputs") or {}
    messages.append(HumanMessage(str(inputs.get("question") or inputs or "Begin.")))
    return messages


async def _react(step: WorkflowStep, task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    services = services_for(runtime, task["actions"])
    tools = {name: services.actions.tool(name) for name in step.tools}
    model = services.actions.agent(step.agent_capability or "")
    bound = model.bind_tools(list(tools.values())) if tools else model
    messages = _prompt(step, task)
    trace: list[dict[str, Any]] = []
    hooks, clock = hooks_of(runtime), clock_of(runtime)
    name = str(
        getattr(model, "model_name", None) or getattr(model, "model", None) or step.agent_capability
    )
    for iteration in range(1, step.max_iterations + 1):
        asked = clock()
        reply = await bound.ainvoke(messages)
        if not isinstance(reply, AIMessage):
            reply = AIMessage(content=str(getattr(reply, "content", reply)))
        messages.append(reply)
        calls = list(reply.tool_calls)
        usage: dict[str, Any] = dict(reply.usage_metadata or {})
        hooks.on_model_call(
            workflow_id=task["workflow_id"],
            run_id=task["run_id"],
            step_id=step.step_id,
            model=name,
            duration=clock() - asked,
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
            tool_calls=len(calls),
        )
        trace.append(
            {
                "iteration": iteration,
                "thought": reply.content,
                "tool_calls": [{"name": c["name"], "args": c["args"]} for c in calls],
            }
        )
        if not calls:
            return {"answer": reply.content, "iterations": iteration, "trace": trace}
        for call in calls:
            if call["name"] not in tools:
                observation: Any = (
                    f"unknown tool '{call['name']}'; available: {', '.join(tools) or 'none'}"
                )
            else:
                observation = await tools[call["name"]].ainvoke(call["args"])
            trace[-1].setdefault("observations", []).append(to_plain(observation))
            messages.append(ToolMessage(content=str(observation), tool_call_id=call["id"] or ""))
    raise StepFailedError(
        f"react step '{step.step_id}' gave no answer within max_iterations="
        f"{step.max_iterations}; raise max_iterations or sharpen the prompt"
    )


async def react_agent(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Run the reason/act loop and record its answer and trace."""
    clock = clock_of(runtime)
    step = step_from_data(task["step"])
    outcome = StepOutcome(step.step_id, StepStatus.COMPLETED, started=clock(), attempts=1)
    hooks_of(runtime).on_step_started(
        workflow_id=task["workflow_id"],
        run_id=task["run_id"],
        step_id=step.step_id,
        step_type=step.step_type.value,
    )
    try:
        output = to_plain(
            await step_run(
                workflow_id=task["workflow_id"],
                run_id=task["run_id"],
                step_id=step.step_id,
                step_type=step.step_type.value,
                inputs=task.get("inputs"),
                work=lambda: _react(step, task, runtime),
            )
        )
        outcome.output = output
        outcome.iterations = output["iterations"]
        outcome.context_updates = map_outputs(step.output_mapping, output)
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- the failure is recorded on the step
        outcome.status, outcome.error = StepStatus.FAILED, exc
    outcome.finished = clock()
    return finish(task, runtime, outcome)
