"""The `react_agent` node: a reason/act loop on LangChain's chat models and LangGraph's
`ToolNode`.

The chat model named by `agent_capability` is bound to the step's `tools`. Each turn, the
model is called under the step's retry policy, timeout and circuit breaker (the same policy
path actions take) after a token-budget check; LangGraph's `ToolNode` runs the turn's tool
calls concurrently and turns a tool's exception into an error observation for the model.
The loop ends at an answer or after `max_iterations` model calls (`on_limit: fail` or
`partial`). With `output_schema` a last structured-output call turns the answer into an
object. A compiled graph (a prebuilt agent) as `agent_capability` runs as one guarded call.

The loop runs in this node, not as a subgraph, so its tokens and tool-call chunks reach the
parent graph's `stream_mode="messages"` as the node's own events. The trace (thoughts, tool
calls, observations, token usage) is the step's output; a summary goes to the hooks (audit).
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from nodes._agents import AgentKind, answer_of, kind_of, to_messages, trace_of, usage_of
from nodes._definition import step_from_data
from nodes._model_calls import IterationLimitError, TokenMeter, guarded_model_call, model_name
from nodes._outcome import StepOutcome
from nodes._plain import to_plain
from nodes._report import finish
from nodes._services import clock_of, hooks_of
from nodes._step_runner import StepEnv, call_guarded
from nodes._task import StepTask
from nodes._trace import step_run
from nodes.parallel_executor import failed_outcome, meter_for, step_env
from policies import fill_placeholders, map_outputs
from state import MappingError, StepFailedError, StepStatus, WorkflowStep

LIMIT_FLAG = "iteration_limit_reached"


def _system_prompt(step: WorkflowStep, task: StepTask) -> str | None:
    if not step.prompt:
        return None
    return fill_placeholders(step.prompt, task.get("namespace") or {})


def _tool_error(exc: Exception) -> str:
    """A tool's failure, as the observation the model sees next."""
    return f"Error: {type(exc).__name__}: {exc}. Fix the arguments or try another way."


async def _with_model(
    step: WorkflowStep, task: StepTask, env: StepEnv, model: Any, meter: TokenMeter
) -> tuple[dict[str, Any], list[str]]:
    capability = step.agent_capability or ""
    label = model_name(model, capability)
    tools = [env.services.actions.tool(name) for name in step.tools]
    bound = model.bind_tools(tools) if tools else model
    # LangGraph's ToolNode runs one turn's tool calls concurrently and turns a tool's error
    # (or an unknown tool) into an error observation for the model
    from langgraph.prebuilt import ToolNode  # loaded with the first react step, not at import

    tool_node = ToolNode(tools, handle_tool_errors=_tool_error) if tools else None
    messages: list[BaseMessage] = to_messages(task.get("inputs") or {})
    if prompt := _system_prompt(step, task):
        messages = [SystemMessage(prompt), *messages]
    retries = [0]

    def attempt(number: int) -> None:
        retries[0] += number > 1

    async def ask(runnable: Any, history: list[BaseMessage]) -> Any:
        return await guarded_model_call(
            step,
            env,
            meter,
            capability,
            lambda: runnable.ainvoke(history),
            name=label,
            on_attempt=attempt,
        )

    flags: list[str] = []
    calls = 0
    while True:
        if calls >= step.max_iterations:
            if step.on_limit != "partial":
                raise IterationLimitError(
                    f"react step '{step.step_id}' made {calls} model calls "
                    f"(max_iterations={step.max_iterations}) without a final answer; raise "
                    "max_iterations, sharpen the prompt, or set `on_limit: partial`",
                    messages,
                )
            flags.append(LIMIT_FLAG)
            break
        reply = await ask(bound, messages)
        calls += 1
        if not isinstance(reply, AIMessage):
            reply = AIMessage(content=str(getattr(reply, "content", reply)))
        messages.append(reply)
        if not reply.tool_calls:
            break
        if tool_node is None:
            messages.extend(_no_tools(reply))
            continue
        observed = await tool_node.ainvoke({"messages": messages})
        messages.extend(observed["messages"])
        _announce(step, observed["messages"])
    output: dict[str, Any] = {
        "answer": answer_of(messages),
        "iterations": calls,
        "trace": trace_of(messages),
    }
    if step.output_schema is not None and not flags:
        schema = step.output_schema
        structured = model.with_structured_output(schema, include_raw=True)
        result = await ask(structured, [*messages, HumanMessage(_STRUCTURED_ASK)])
        if result.get("parsing_error") is not None or result.get("parsed") is None:
            raise StepFailedError(
                f"react step '{step.step_id}' got an answer that does not match its "
                f"output_schema: {result.get('parsing_error') or 'no structured answer'}; "
                "check the schema or the model"
            )
        output["answer"] = result["parsed"]
    if flags:
        output["limit_reached"] = True
    output["usage"] = dict(meter.used)
    output["model_retries"] = retries[0]
    return output, flags


def _announce(step: WorkflowStep, observations: list[BaseMessage]) -> None:
    """Tool results to `stream_mode="custom"` (tokens and tool calls go to "messages")."""
    try:
        write = get_stream_writer()
    except RuntimeError:  # not inside a graph run: nobody to tell
        return
    for message in observations:
        if isinstance(message, ToolMessage):
            write(
                {
                    "event": "tool_result",
                    "step_id": step.step_id,
                    "tool": message.name,
                    "tool_call_id": message.tool_call_id,
                    "status": message.status,
                    "content": message.content,
                }
            )


_STRUCTURED_ASK = "Give your final answer now, in the required structured format."


def _no_tools(reply: AIMessage) -> list[ToolMessage]:
    return [
        ToolMessage(
            content=f"Error: no tools are available to this step; '{call['name']}' cannot run. "
            "Answer without tools.",
            tool_call_id=call["id"] or "",
            status="error",
        )
        for call in reply.tool_calls
    ]


async def _with_graph(
    step: WorkflowStep, task: StepTask, env: StepEnv, graph: Any, meter: TokenMeter
) -> dict[str, Any]:
    messages: list[BaseMessage] = to_messages(task.get("inputs") or {})
    if prompt := _system_prompt(step, task):
        messages = [SystemMessage(prompt), *messages]
    meter.check(step.step_id)
    capability = step.agent_capability or ""
    final = await call_guarded(
        step, env, capability, lambda _ctx: graph.ainvoke({"messages": messages})
    )
    history: list[BaseMessage] = final["messages"]
    for reply in history[len(messages) :]:
        if isinstance(reply, AIMessage):
            meter.add(reply)
    usage = usage_of(history)
    return {
        "answer": final.get("structured_response") or answer_of(history),
        "iterations": usage["model_calls"],
        "trace": trace_of(history),
        "usage": dict(meter.used),
    }


async def react_agent(task: StepTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Run the reason/act loop and record its answer, trace and token usage."""
    clock = clock_of(runtime)
    step = step_from_data(task["step"])
    if "input_error" in task:
        return finish(
            task, runtime, failed_outcome(task, MappingError(task["input_error"]), clock())
        )
    outcome = StepOutcome(step.step_id, StepStatus.COMPLETED, started=clock(), attempts=1)
    hooks = hooks_of(runtime)
    ids = {"workflow_id": task["workflow_id"], "run_id": task["run_id"]}
    hooks.on_step_started(**ids, step_id=step.step_id, step_type=step.step_type.value)
    cpu_start = time.process_time()
    env = step_env(task, runtime)
    meter = meter_for(task, env)
    try:
        agent = env.services.actions.agent(step.agent_capability or "")

        async def work() -> Any:
            if kind_of(agent) is AgentKind.GRAPH:
                return await _with_graph(step, task, env, agent, meter)
            output, outcome.flags = await _with_model(step, task, env, agent, meter)
            return output

        output = to_plain(
            await step_run(
                workflow_id=task["workflow_id"],
                run_id=task["run_id"],
                step_id=step.step_id,
                step_type=step.step_type.value,
                inputs=task.get("inputs"),
                work=work,
            )
        )
        outcome.output = output
        outcome.iterations = output["iterations"]
        outcome.attempts = 1 + int(output.get("model_retries") or 0)
        outcome.context_updates = map_outputs(step.output_mapping, output)
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- the failure is recorded on the step
        outcome.status, outcome.error = StepStatus.FAILED, exc
        outcome.attempts = max(1, int(getattr(exc, "attempts", 1) or 1))
    outcome.finished = clock()
    outcome.cpu_seconds = time.process_time() - cpu_start
    hooks.on_agent_finished(
        **ids,
        step_id=step.step_id,
        model=step.agent_capability or "",
        status=outcome.status.value,
        iterations=meter.used.get("model_calls", 0),
        tool_calls=sum(len(t["tool_calls"]) for t in (outcome.output or {}).get("trace", [])),
        usage=dict(meter.used),
        limit_reached=bool(outcome.flags),
    )
    update = finish(task, runtime, outcome)
    if meter.used.get("model_calls"):
        update["token_usage"] = dict(meter.used)
    return update
