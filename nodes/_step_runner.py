"""Running one action-like step under its policies: timeout, circuit breaker, retry.

A failure becomes a failed `StepOutcome` carrying the error; nothing is swallowed. LangGraph
control-flow signals (interrupts, drains) pass through untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from langgraph.errors import GraphBubbleUp

from nodes._cache import cache_key
from nodes._outcome import StepOutcome
from nodes._plain import to_plain
from nodes._services import RunServices, StepContext, step_logger
from nodes._webhook import call_webhook, resolve_url
from policies import (
    call_with_retry,
    check_value,
    is_control_flow,
    map_outputs,
    redact_text,
    resolve_path,
    run_with_timeout,
)
from state import (
    CircuitOpenError,
    InvalidInputError,
    RetryPolicy,
    StepStatus,
    StepTimeoutError,
    StepType,
    WorkflowStep,
    WorkflowTimeoutError,
)

T = TypeVar("T")

_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "number": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
}


@dataclass(frozen=True, slots=True)
class StepEnv:
    """What every step of one dispatched task shares."""

    services: RunServices
    workflow_id: str
    run_id: str
    retry: RetryPolicy
    max_parallel: int
    deadline: float | None
    key_prefix: str
    stored_bytes: int = 0
    """JSON bytes of the outputs the run had stored when this task was dispatched."""
    gate: asyncio.Semaphore | None = None
    """Caps concurrent action calls of a parallel container; held only while an action runs,
    so bookkeeping (hooks, audit, mappings) never occupies a slot."""
    version: str | None = None
    """Version of the workflow (set when a step of the task is cacheable)."""
    traced: bool | None = None
    """Whether callback handlers listen where a container's children run (asked once per
    container, not once per child); None: each step asks."""

    def policy_for(self, step: WorkflowStep) -> RetryPolicy:
        """The workflow policy overridden by the step's own fields."""
        return step.retry_over(self.retry)

    def time_left(self, step_id: str) -> float | None:
        """Seconds until the workflow deadline; raises once it has passed."""
        if self.deadline is None:
            return None
        left = self.deadline - self.services.clock()
        if left <= 0:
            raise WorkflowTimeoutError(
                f"the workflow timeout passed before step '{step_id}' could finish; raise the "
                "workflow's `timeout` if runs need longer"
            )
        return left


def check_inputs(step: WorkflowStep, inputs: Mapping[str, Any]) -> None:
    """Enforce `input_validation`: every listed param present and of its type."""
    problems = []
    for param, typ in step.input_validation.items():
        value = inputs.get(param)
        if value is None:
            problems.append(f"'{param}' is missing (check input_mapping)")
        elif typ != "any" and (
            not isinstance(value, _TYPE_CHECKS[typ])
            or (typ in ("int", "float", "number") and isinstance(value, bool))
        ):
            problems.append(f"'{param}' should be {typ}, got {type(value).__name__} {value!r}")
    if problems:
        raise InvalidInputError(f"step '{step.step_id}' got invalid inputs: " + "; ".join(problems))


async def call_guarded(
    step: WorkflowStep,
    env: StepEnv,
    breaker_name: str,
    make_call: Callable[[StepContext], Awaitable[T]],
    *,
    on_attempt: Callable[[int], None] | None = None,
    failed_attempts: list[str] | None = None,
) -> T:
    """Await `make_call(ctx)` under the step's policies: retry with backoff, the circuit
    breaker named `breaker_name`, the step timeout per attempt and the workflow deadline.

    Actions, webhooks and the model calls of agent steps all go through here, so a policy
    means the same thing whatever the step calls. Raises the final error (with `attempts`);
    the error type of each failed attempt that is retried goes to `failed_attempts`.
    """
    services = env.services
    key = f"{env.key_prefix}:{step.step_id}"
    log = step_logger(workflow_id=env.workflow_id, run_id=env.run_id, step_id=step.step_id)

    async def attempt(number: int) -> T:
        if on_attempt is not None:
            on_attempt(number)
        left = env.time_left(step.step_id)
        limits = [t for t in (step.timeout, left) if t is not None]
        ctx = StepContext(
            workflow_id=env.workflow_id,
            run_id=env.run_id,
            step_id=step.step_id,
            attempt=number,
            idempotency_key=key,
            logger=log,
            metrics=metric_sink(step, env) if step.custom_metrics else None,
        )
        breaker = services.breakers.get(breaker_name)
        breaker.before_call()
        call = make_call(ctx)
        try:
            limit = min(limits) if limits else None
            try:
                if env.gate is None:
                    result = await run_with_timeout(call, limit, step_id=step.step_id)
                else:
                    async with env.gate:
                        result = await run_with_timeout(call, limit, step_id=step.step_id)
            except StepTimeoutError as exc:
                if left is not None and (step.timeout is None or left <= step.timeout):
                    # the run's deadline, not the step's, cut this attempt off: never retried
                    raise WorkflowTimeoutError(
                        f"the workflow timeout passed while step '{step.step_id}' ran; {exc}"
                    ) from exc
                raise
        except BaseException as exc:
            if is_control_flow(exc):
                breaker.record_cancelled()  # frees a half-open trial slot; not a failure
            else:
                breaker.record_failure()
            raise
        breaker.record_success()
        return result

    async def on_retry(*, attempt: int, error: BaseException, delay: float, **_: Any) -> None:
        if failed_attempts is not None:
            failed_attempts.append(type(error).__name__)
        log.warning("step_retry", attempt=attempt, error=str(error), delay=round(delay, 3))
        services.hooks.on_step_retry(
            workflow_id=env.workflow_id,
            run_id=env.run_id,
            step_id=step.step_id,
            attempt=attempt,
            error=redact_text(f"{type(error).__name__}: {error}"),
            delay=delay,
        )

    async def wait(delay: float) -> None:
        # a retry never sleeps past the run's deadline: the next attempt then times the run out
        if env.deadline is not None:
            delay = max(0.0, min(delay, env.deadline - services.clock()))
        await services.sleep(delay)

    return await call_with_retry(
        attempt, env.policy_for(step), sleep=wait, rng=services.rng, on_retry=on_retry
    )


def breaker_name_for(step: WorkflowStep, namespace: Mapping[str, Any] | None) -> str:
    """The circuit breaker a step's calls count against: the action (or agent) name, or
    `webhook:host` for webhooks."""
    if step.step_type is StepType.WEBHOOK and step.webhook is not None:
        return f"webhook:{urlsplit(resolve_url(step.webhook, namespace or {})).netloc}"
    return step.action or step.agent_capability or ""


async def run_leaf(
    step: WorkflowStep, env: StepEnv, inputs: Mapping[str, Any], namespace: Mapping[str, Any] | None
) -> StepOutcome:
    """Run an action or webhook step with retry, breaker and timeout."""
    services = env.services
    policy = env.policy_for(step)
    log = step_logger(workflow_id=env.workflow_id, run_id=env.run_id, step_id=step.step_id)
    outcome = StepOutcome(step.step_id, StepStatus.RUNNING, started=services.clock())
    cpu_start = time.process_time()

    def started(number: int) -> None:
        outcome.attempts = number
        if number == 1:
            services.hooks.on_step_started(
                workflow_id=env.workflow_id,
                run_id=env.run_id,
                step_id=step.step_id,
                step_type=step.step_type.value,
            )

    def make_call(ctx: StepContext) -> Awaitable[Any]:
        if step.step_type is StepType.WEBHOOK and step.webhook is not None:
            return call_webhook(
                step.webhook,
                resolve_url(step.webhook, namespace or {}),
                inputs,
                step_id=step.step_id,
                services=services,
                idempotency_key=ctx.idempotency_key,
            )
        name = step.action or step.agent_capability or ""
        if step.isolation == "process":
            return services.actions.invoke(name, inputs, ctx, isolation="process")
        return services.actions.invoke(name, inputs, ctx)

    cache = services.cache if step.cacheable and env.version is not None else None
    cache_id = ""
    try:
        check_inputs(step, inputs)
        if cache is not None:
            name = step.action or step.agent_capability or ""
            cache_id = cache_key(env.workflow_id, str(env.version), name, inputs)
            hit, cached = await asyncio.to_thread(cache.get, cache_id, services.clock())
            if hit:
                return _from_cache(step, env, outcome, cached, cache_id, cpu_start)
        output = to_plain(
            await call_guarded(
                step,
                env,
                breaker_name_for(step, namespace),
                make_call,
                on_attempt=started,
                failed_attempts=outcome.failed_attempts,
            )
        )
        size = _check_output(step.step_id, output, env)
        outcome.output_bytes = size
        outcome.context_updates = map_outputs(step.output_mapping, output)
        record_output_metrics(step, env, output)
        if cache is not None:
            await asyncio.to_thread(cache.put, cache_id, output, services.clock(), step.cache_ttl)
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 -- any failure becomes data: a failed outcome
        outcome.attempts = max(outcome.attempts, getattr(exc, "attempts", outcome.attempts))
        return _failed(outcome, exc, policy, cpu_start, services.clock())
    outcome.status, outcome.output = StepStatus.COMPLETED, output
    outcome.finished = services.clock()
    outcome.cpu_seconds = time.process_time() - cpu_start
    log.debug("step_completed", attempts=outcome.attempts)
    return outcome


def _check_output(step_id: str, output: Any, env: StepEnv) -> int:
    """The output's JSON size; raises `InvalidInputError` past the step or run limit."""
    limits = env.services.limits
    size = check_value(
        output,
        limits,
        what=f"the output of step '{step_id}'",
        max_bytes=limits.max_step_output_bytes,
    )
    if env.stored_bytes + size > limits.max_run_state_bytes:
        raise InvalidInputError(
            f"the output of step '{step_id}' ({size} bytes) would take the run's stored "
            f"outputs past the limit of {limits.max_run_state_bytes} bytes; return less (a "
            "reference instead of the data), or raise the limit max_run_state_bytes "
            "(ORCHESTRATOR_LIMIT_MAX_RUN_STATE_BYTES)"
        )
    return size


METRIC_KINDS = frozenset({"gauge", "counter", "histogram"})
"""`custom_metrics` values that name a kind (anything else is a path over the output)."""


def metric_sink(step: WorkflowStep, env: StepEnv) -> Any:
    """The `ctx.metrics` of a step: sets the series it declares, refuses the others."""

    def record(name: str, value: float) -> None:
        kind = step.custom_metrics.get(name)
        if kind is None:
            declared = ", ".join(sorted(step.custom_metrics)) or "none"
            raise InvalidInputError(
                f"step '{step.step_id}' records metric '{name}' but declares only {declared}; "
                f"add '{name}' to its custom_metrics"
            )
        env.services.hooks.on_custom_metric(
            workflow_id=env.workflow_id,
            run_id=env.run_id,
            step_id=step.step_id,
            name=name,
            kind=kind if kind in METRIC_KINDS else "gauge",
            value=float(value),
        )

    return record


def record_output_metrics(step: WorkflowStep, env: StepEnv, output: Any) -> None:
    """Set the gauges a step declares as `{name: path}` from its output (numbers only)."""
    for name, spec in step.custom_metrics.items():
        if spec in METRIC_KINDS:
            continue
        value = resolve_path(spec, output)
        if isinstance(value, int | float) and not isinstance(value, bool):
            env.services.hooks.on_custom_metric(
                workflow_id=env.workflow_id,
                run_id=env.run_id,
                step_id=step.step_id,
                name=name,
                kind="gauge",
                value=float(value),
            )


def _from_cache(
    step: WorkflowStep, env: StepEnv, outcome: StepOutcome, output: Any, key: str, cpu: float
) -> StepOutcome:
    """A completed outcome served from the step cache (no attempt made; audited)."""
    env.services.hooks.on_cache_hit(
        workflow_id=env.workflow_id, run_id=env.run_id, step_id=step.step_id, key=key
    )
    outcome.status, outcome.output = StepStatus.COMPLETED, output
    outcome.context_updates = map_outputs(step.output_mapping, output)
    outcome.reason = "served from the step cache"
    outcome.finished = env.services.clock()
    outcome.cpu_seconds = time.process_time() - cpu
    return outcome


def _failed(
    outcome: StepOutcome, exc: BaseException, policy: RetryPolicy, cpu_start: float, now: float
) -> StepOutcome:
    outcome.error = exc
    outcome.finished = now
    outcome.cpu_seconds = time.process_time() - cpu_start
    if isinstance(exc, CircuitOpenError):
        outcome.flags.append("circuit_open")
    if policy.continue_on_failure and not isinstance(exc, WorkflowTimeoutError):
        outcome.status = StepStatus.SKIPPED
        outcome.reason = f"failed and continue_on_failure is set: {type(exc).__name__}: {exc}"
    else:
        outcome.status = StepStatus.FAILED
    return outcome
