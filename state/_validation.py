"""Whole-definition checks that find every problem at once.

They run on the raw mapping (before or beside pydantic), so a definition with a type error
in one step still gets its unknown ids, cycles and bad expressions reported in the same error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import ValidationError

from state._enums import StepType
from state._errors import DefinitionProblem
from state._expression_syntax import check_expression

_VALID_TYPES = {t.value for t in StepType}
_INPUT_TYPES = {"str", "int", "float", "number", "bool", "dict", "list", "any"}
_NEEDS_ACTION = {"sequential", "worker", "orchestrator"}
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True, slots=True)
class _Located:
    """A raw step with its location and the container it sits in (None at top level)."""

    step: Mapping[str, Any]
    where: str
    parent: str | None


def step_label(index: int, step: Any, prefix: str = "steps") -> str:
    """`steps[2] (charge)`: the location of a step for messages."""
    sid = step.get("step_id") if isinstance(step, Mapping) else None
    return f"{prefix}[{index}] ({sid})" if isinstance(sid, str) else f"{prefix}[{index}]"


def _walk(steps: Any, prefix: str, parent: str | None) -> Iterator[_Located]:
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        return
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        where = step_label(index, step, prefix)
        yield _Located(step, where, parent)
        sid = step.get("step_id") if isinstance(step.get("step_id"), str) else None
        for key in ("parallel_steps", "body"):
            yield from _walk(step.get(key), f"{where}.{key}", sid)


def collect_problems(raw: Mapping[str, Any]) -> list[DefinitionProblem]:
    """Every cross-step problem of a raw definition mapping."""
    located = list(_walk(raw.get("steps"), "steps", None))
    problems: list[DefinitionProblem] = []
    if not located:
        problems.append(DefinitionProblem("steps", "a workflow needs at least one step"))
    _check_ids(located, problems)
    top_ids = {
        loc.step["step_id"]
        for loc in located
        if loc.parent is None and isinstance(loc.step.get("step_id"), str)
    }
    for loc in located:
        _check_step(loc, top_ids, problems)
    _check_cycles(located, problems)
    return problems


def _check_ids(located: list[_Located], problems: list[DefinitionProblem]) -> set[str]:
    seen: dict[str, str] = {}
    for loc in located:
        sid = loc.step.get("step_id")
        if not isinstance(sid, str):
            continue
        if sid in seen:
            problems.append(
                DefinitionProblem(
                    f"{loc.where}.step_id",
                    f"duplicate step id '{sid}' (first used at {seen[sid]}); step ids must be "
                    "unique across the workflow, nested steps included",
                )
            )
        else:
            seen[sid] = loc.where
    return set(seen)


def _unknown(ref: Any, known: set[str], what: str) -> str | None:
    if not isinstance(ref, str):
        return f"{what} must be a step id string, got {ref!r}"
    if ref in known:
        return None
    close = difflib.get_close_matches(ref, sorted(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{what} unknown step '{ref}'{hint}"


def _refs(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, Sequence) else [value]


def _check_step(loc: _Located, top: set[str], problems: list[DefinitionProblem]) -> None:
    step, where = loc.step, loc.where
    sid = step.get("step_id", "?")

    def add(field: str, message: str) -> None:
        problems.append(DefinitionProblem(f"{where}.{field}", message))

    for dep in _refs(step.get("dependencies")):
        if loc.parent is not None:
            add(
                "dependencies",
                "nested steps run by their container and cannot declare "
                "dependencies; put the dependency on the container instead",
            )
            break
        if msg := _unknown(dep, top, f"step '{sid}' depends on"):
            add("dependencies", msg)
        elif dep == sid:
            add("dependencies", f"step '{sid}' depends on itself")
    for field in ("next_steps", "error_handlers"):
        for ref in _refs(step.get(field)):
            if msg := _unknown(ref, top, f"{field} of '{sid}' names"):
                add(field, msg)
    approval = step.get("approval")
    on_reject = approval.get("on_reject") if isinstance(approval, Mapping) else None
    if on_reject is not None and (msg := _unknown(on_reject, top, f"on_reject of '{sid}' names")):
        add("approval.on_reject", msg)
    _check_type_specific(step, loc, top, add)
    _check_paths(step, add)


def _check_type_specific(step: Mapping[str, Any], loc: _Located, top: set[str], add: Any) -> None:
    stype = step.get("step_type", "sequential")
    sid = step.get("step_id", "?")
    if not isinstance(stype, str) or stype not in _VALID_TYPES:
        valid = ", ".join(sorted(_VALID_TYPES))
        add("step_type", f"unknown step type {stype!r}; use one of: {valid}")
        return
    if stype in _NEEDS_ACTION and not step.get("action") and not step.get("agent_capability"):
        add("action", f"{stype} step '{sid}' needs an `action` (or an `agent_capability`)")
    if step.get("cacheable") is True and stype not in _NEEDS_ACTION:
        add(
            "cacheable",
            f"only action steps can be cached, and '{sid}' is a {stype} step; "
            "remove `cacheable` or mark the action steps inside it",
        )
    if stype == "parallel" and not step.get("parallel_steps"):
        add("parallel_steps", f"parallel step '{sid}' has no `parallel_steps`; add children")
    if stype == "loop":
        if not step.get("body"):
            add("body", f"loop step '{sid}' has no `body`; add the steps to repeat")
        if not step.get("loop_condition"):
            add("loop_condition", f"loop step '{sid}' needs a `loop_condition`")
    if step.get("isolation", "thread") == "process" and stype not in _NEEDS_ACTION:
        add(
            "isolation",
            f"`isolation: process` runs an action in a child process; '{sid}' is {stype}, "
            "which calls no action of its own (put it on the steps that call actions)",
        )
    if stype == "webhook" and not isinstance(step.get("webhook"), Mapping):
        add("webhook", f"webhook step '{sid}' needs `webhook: {{url: ...}}`")
    if stype == "human_approval" and not isinstance(step.get("approval"), Mapping):
        add("approval", f"human_approval step '{sid}' needs `approval: {{approvers: [...]}}`")
    if stype == "react" and not step.get("agent_capability"):
        add("agent_capability", f"react step '{sid}' needs an `agent_capability` (a chat model)")
    _check_rollback(step, top, add)
    _check_router(step, top, add)
    _check_fanout(step, add)
    if stype == "conditional":
        _check_conditions(step, loc, top, add)
    elif step.get("conditions"):
        add("conditions", f"only conditional steps take `conditions`; '{sid}' is {stype}")
    if (loop_cond := step.get("loop_condition")) and (problem := check_expression(loop_cond)):
        add("loop_condition", problem)
    for field, owner in (("parallel_steps", "parallel"), ("body", "loop")):
        if step.get(field) and stype != owner:
            add(field, f"`{field}` belongs to a {owner} step; '{sid}' is {stype}")


def _check_rollback(step: Mapping[str, Any], top: set[str], add: Any) -> None:
    sid, target = step.get("step_id", "?"), step.get("rollback_to")
    if step.get("step_type") == "rollback" and not target:
        add("rollback_to", f"rollback step '{sid}' needs `rollback_to: <rollback point step>`")
    elif target and step.get("step_type") != "rollback":
        add("rollback_to", f"only rollback steps take `rollback_to`; '{sid}' is not one")
    elif target and (msg := _unknown(target, top, f"rollback_to of '{sid}' names")):
        add("rollback_to", msg)


def _check_router(step: Mapping[str, Any], top: set[str], add: Any) -> None:
    sid, router = step.get("step_id", "?"), step.get("router")
    if router is None:
        return
    if step.get("step_type") != "conditional":
        add("router", f"only conditional steps take a `router`; '{sid}' is not one")
        return
    routes = router.get("routes") if isinstance(router, Mapping) else None
    for target in routes if isinstance(routes, Mapping) else ():
        if msg := _unknown(target, top, f"router of '{sid}' routes to"):
            add(f"router.routes.{target}", msg)
        elif target == sid:
            add(f"router.routes.{target}", f"conditional '{sid}' routes to itself")


def _check_fanout(step: Mapping[str, Any], add: Any) -> None:
    sid, stype = step.get("step_id", "?"), step.get("step_type", "sequential")
    path = step.get("for_each")
    if path is not None:
        if stype not in _NEEDS_ACTION:
            add("for_each", f"`for_each` needs an action-like step; '{sid}' is {stype}")
        elif problem := _path_problem(path):
            add("for_each", problem)
    fans_out = path is not None or stype == "orchestrator"
    for field in ("reduce", "workers"):
        if step.get(field) and not fans_out:
            add(
                field,
                f"`{field}` belongs to an orchestrator step or a `for_each` step; '{sid}' is "
                f"a {stype} step without `for_each`",
            )


def _check_conditions(step: Mapping[str, Any], loc: _Located, top: set[str], add: Any) -> None:
    sid = step.get("step_id", "?")
    rules = step.get("conditions")
    if step.get("router") is not None and not rules:
        return  # the model alone routes
    if not isinstance(rules, Sequence) or not rules:
        add("conditions", f"conditional step '{sid}' has no `conditions` (or `router`)")
        return
    if loc.parent is not None:
        add(
            "step_type",
            f"conditional steps route between top-level steps; move '{sid}' out of its container",
        )
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        if rule.get("else") is not None and i != len(rules) - 1:
            add(f"conditions[{i}]", "`else` must be the last condition")
        if isinstance(rule.get("if"), str) and (problem := check_expression(rule["if"])):
            add(f"conditions[{i}].if", problem)
        for target in _refs(rule.get("then")) + _refs(rule.get("else")):
            if msg := _unknown(target, top, f"condition of '{sid}' routes to"):
                add(f"conditions[{i}]", msg)
            elif target == sid:
                add(f"conditions[{i}]", f"conditional '{sid}' routes to itself")


def _check_paths(step: Mapping[str, Any], add: Any) -> None:
    for field in ("input_mapping", "output_mapping", "custom_metrics"):
        mapping = step.get(field)
        if not isinstance(mapping, Mapping):
            continue
        for key, path in mapping.items():
            if problem := _path_problem(path):
                add(f"{field}.{key}", problem)
    metrics = step.get("custom_metrics")
    names = metrics if isinstance(metrics, list | tuple) else metrics or {}
    for name in names:
        if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
            add(
                f"custom_metrics.{name}",
                f"{name!r} is not a Prometheus metric name; use letters, digits and "
                "underscores, not starting with a digit (e.g. documents_scanned)",
            )
    validation = step.get("input_validation")
    if isinstance(validation, Mapping):
        for key, typ in validation.items():
            if not isinstance(typ, str) or typ not in _INPUT_TYPES:
                add(
                    f"input_validation.{key}",
                    f"unknown type {typ!r}; use one of {', '.join(sorted(_INPUT_TYPES))}",
                )


def _path_problem(path: Any) -> str | None:
    if not isinstance(path, str) or not path.strip():
        return f"a path must be a non-empty string, got {path!r}"
    try:
        jmespath.compile(path)
    except JMESPathError as exc:
        return (
            f"invalid path `{path}`: {str(exc).splitlines()[0]}; quote keys with dashes, "
            'e.g. results."step-1".score'
        )
    return None


def _dependency_edges(located: list[_Located]) -> dict[str, set[str]]:
    """step -> the steps it waits for (dependencies, conditional targets, next_steps)."""
    edges: dict[str, set[str]] = {}
    for loc in located:
        sid = loc.step.get("step_id")
        if loc.parent is None and isinstance(sid, str):
            edges.setdefault(sid, set()).update(
                d for d in _refs(loc.step.get("dependencies")) if isinstance(d, str)
            )
    for loc in located:
        sid = loc.step.get("step_id")
        if loc.parent is not None or not isinstance(sid, str):
            continue
        targets = _refs(loc.step.get("next_steps"))
        for rule in _refs(loc.step.get("conditions")):
            if isinstance(rule, Mapping):
                targets += _refs(rule.get("then")) + _refs(rule.get("else"))
        for target in targets:
            if isinstance(target, str) and target in edges and target != sid:
                edges[target].add(sid)
    return edges


def _check_cycles(located: list[_Located], problems: list[DefinitionProblem]) -> None:
    edges = _dependency_edges(located)
    color: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def report(cycle: list[str]) -> None:
        key = frozenset(cycle)
        if key not in reported:
            reported.add(key)
            shown = " -> ".join([*cycle, cycle[0]])
            problems.append(
                DefinitionProblem(
                    "steps", f"dependency cycle: {shown}; remove one of these dependencies"
                )
            )

    # iterative depth-first search: a 10,000-step chain must not exhaust the Python stack
    for start in sorted(edges):
        if color.get(start) is not None:
            continue
        path: list[str] = [start]
        color[start] = 1
        stack = [iter(sorted(edges.get(start, ())))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                color[path.pop()] = 2
                continue
            if nxt not in edges or nxt == path[-1]:
                continue
            if color.get(nxt) == 1:
                report(path[path.index(nxt) :])
            elif color.get(nxt) is None:
                color[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))


def pydantic_problems(error: ValidationError, raw: Any) -> list[DefinitionProblem]:
    """Turn pydantic's field errors into located problems (`steps[1] (vet).timeout`)."""
    problems = []
    for item in error.errors():
        loc = item["loc"]
        parts: list[str] = []
        node: Any = raw
        for i, key in enumerate(loc):
            if isinstance(key, int):
                child = node[key] if isinstance(node, Sequence) and key < len(node) else None
                prefix = parts.pop() if parts else str(loc[i - 1])
                parts.append(
                    step_label(key, child, prefix)
                    if isinstance(child, Mapping)
                    else f"{prefix}[{key}]"
                )
                node = child
            else:
                parts.append(str(key))
                node = node.get(key) if isinstance(node, Mapping) else None
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field; check its spelling against `orchestrator schema`"
        if item["type"] == "enum" and loc and loc[-1] == "step_type":
            continue  # collect_problems reports unknown step types with the valid list
        problems.append(DefinitionProblem(".".join(parts) or "definition", message))
    return problems
