"""What steps read from each other, which orderings are not needed, and how long a schedule
takes.

A step *reads* another when one of its paths or expressions (input mappings, conditions, loop
conditions, prompts, webhook urls, its children's too) names `results.<that step>` or a
`context` key the other writes in its `output_mapping`; a path naming the whole `context` or
`results` reads everything. `parallel_dependencies` keeps, for each plain action step,
only the steps it must follow (those it reads, or that are not plain action steps), so
ordering that only the definition asked for disappears and the ordering the data needs stays.
`schedule_makespan` plays a schedule with measured step times and the concurrency cap.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping

from state import AdvancedWorkflow, StepType, WorkflowStep

PLAIN_STEP_TYPES = frozenset({StepType.SEQUENTIAL, StepType.WORKER})
"""Steps whose ordering the optimizer may change: they only call an action."""

_REF = re.compile(
    r"\b(context|results|input|globals)\b(?:\s*\.\s*(?:\"([^\"]+)\"|([A-Za-z_][\w-]*)))?"
)
WHOLE = "*"
"""The key of a reference to a whole root (`context`, `results`)."""


def _texts(step: WorkflowStep) -> list[str]:
    texts = [*step.input_mapping.values()]
    texts += [rule.if_ for rule in step.conditions if rule.if_]
    texts += [t for t in (step.loop_condition, step.prompt) if t]
    if step.webhook is not None:
        texts += [step.webhook.url, *step.webhook.headers.values()]
    for child in step.children:
        texts += _texts(child)
    return texts


def references(step: WorkflowStep) -> set[tuple[str, str]]:
    """`(root, key)` pairs the step (and its children) read; key `*` for a whole root."""
    found: set[tuple[str, str]] = set()
    for text in _texts(step):
        for match in _REF.finditer(text):
            found.add((match.group(1), match.group(2) or match.group(3) or WHOLE))
    return found


def writes(step: WorkflowStep) -> set[str]:
    """Context keys the step (and its children) write through `output_mapping`."""
    keys = set(step.output_mapping)
    for child in step.children:
        keys |= writes(child)
    return keys


def _ids(step: WorkflowStep) -> set[str]:
    return {step.step_id, *(i for child in step.children for i in _ids(child))}


def reads_from(step: WorkflowStep, other: WorkflowStep) -> bool:
    """True when `step` reads anything `other` produces (or may: whole-root reads)."""
    refs = references(step)
    if ("context", WHOLE) in refs or ("results", WHOLE) in refs:
        return True
    if any(("results", sid) in refs for sid in _ids(other)):
        return True
    return any(("context", key) in refs for key in writes(other))


def _protected(workflow: AdvancedWorkflow) -> set[str]:
    """Steps whose place in the schedule is decided by others: conditional and next_steps
    targets, error handlers and on_reject steps (moving after them changes when a step runs)."""
    out: set[str] = set()
    for step in workflow.iter_steps():
        out.update(step.next_steps, step.error_handlers)
        for rule in step.conditions:
            out.update(rule.targets)
        if step.approval is not None and step.approval.on_reject:
            out.add(step.approval.on_reject)
    return out


def _movable(step: WorkflowStep, dep: WorkflowStep, protected: set[str]) -> bool:
    return (
        step.step_type in PLAIN_STEP_TYPES
        and dep.step_type in PLAIN_STEP_TYPES
        and dep.step_id not in protected
        and step.step_id not in protected
        and not reads_from(step, dep)
        and not (writes(step) & writes(dep))  # last writer wins: keep the order
    )


def ancestors(deps: Mapping[str, list[str]], sid: str) -> set[str]:
    """Every step `sid` waits for, directly or through others."""
    seen: set[str] = set()
    stack = list(deps.get(sid, []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(deps.get(current, []))
    return seen


def parallel_dependencies(workflow: AdvancedWorkflow) -> dict[str, list[str]]:
    """`{step_id: new dependencies}` for the top-level steps whose dependencies can shrink.

    A plain action step keeps, of everything it waited for directly or through others, the
    steps it must still follow (it reads them, writes what they write, or they are not plain
    action steps); of those, it lists the ones no other kept step already waits for.
    """
    steps: dict[str, WorkflowStep] = {s.step_id: s for s in workflow.steps}
    original: dict[str, list[str]] = {s.step_id: list(s.dependencies) for s in workflow.steps}
    protected = _protected(workflow)
    needed: dict[str, list[str]] = {}
    for step in workflow.steps:
        if step.step_type not in PLAIN_STEP_TYPES or step.step_id in protected:
            needed[step.step_id] = list(step.dependencies)
            continue
        before = ancestors(original, step.step_id)
        needed[step.step_id] = [
            sid for sid in steps if sid in before and not _movable(step, steps[sid], protected)
        ]
    changed: dict[str, list[str]] = {}
    for step in workflow.steps:
        keep = needed[step.step_id]
        keep = [k for k in keep if not any(k in ancestors(needed, o) for o in keep if o != k)]
        if sorted(keep) != sorted(step.dependencies):
            changed[step.step_id] = keep
    return changed


def waits_for(
    workflow: AdvancedWorkflow, dependencies: Mapping[str, list[str]] | None = None
) -> dict[str, set[str]]:
    """`{step_id: steps it waits for}`: dependencies (optionally replaced) plus the implicit
    ones (conditional targets and next_steps wait for the step naming them)."""
    deps = dependencies or {}
    waits: dict[str, set[str]] = {
        s.step_id: set(deps.get(s.step_id, s.dependencies)) for s in workflow.steps
    }
    for step in workflow.steps:
        targets = [*step.next_steps, *(t for rule in step.conditions for t in rule.targets)]
        for target in targets:
            if target in waits and target != step.step_id:
                waits[target].add(step.step_id)
    return waits


def schedule_makespan(
    workflow: AdvancedWorkflow,
    durations: Mapping[str, float],
    dependencies: Mapping[str, list[str]] | None = None,
) -> float:
    """Seconds a run takes when each top-level step lasts `durations[step]` (0 if unknown),
    steps start as soon as what they wait for is done, and at most `max_parallel_steps` run
    at once (list scheduling in definition order)."""
    waits = waits_for(workflow, dependencies)
    order: list[str] = [s.step_id for s in workflow.steps]
    done: set[str] = set()
    started: set[str] = set()
    running: list[tuple[float, str]] = []
    now = 0.0
    while len(done) < len(order):
        for sid in order:
            if len(running) >= workflow.max_parallel_steps:
                break
            if sid not in started and waits[sid] <= done:
                started.add(sid)
                heapq.heappush(running, (now + max(0.0, durations.get(sid, 0.0)), sid))
        if not running:
            break  # a cycle or a wait on an unknown step: validation prevents both
        now, sid = heapq.heappop(running)
        done.add(sid)
    return now
