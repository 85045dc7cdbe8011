"""Reading workflow definitions from YAML or JSON files, and their JSON Schema.

Hostile files are refused before they cost anything: the file size is checked before
parsing; a first pass over the YAML events (libyaml's C parser where installed) bounds the
nesting depth and the number of values with every alias expanded (an "alias bomb" is a few
hundred bytes that expand to billions of values); duplicate keys are an error, never a silent
last-wins. The limits are `policies.Limits` fields.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodes import load_actions_module
from policies import Limits, nesting_depth
from state import (
    ActionNotFoundError,
    AdvancedWorkflow,
    DefinitionProblem,
    StepType,
    WorkflowDefinitionError,
)

if TYPE_CHECKING:
    import yaml

__all__ = ["load_workflow", "parse_definition", "workflow_schema"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_ENV = "ORCHESTRATOR_LIMIT_"


class _RefusedError(ValueError):
    """A definition the limits refuse (turned into a `WorkflowDefinitionError`)."""


@cache
def _loaders() -> tuple[type[yaml.SafeLoader], type[yaml.SafeLoader]]:
    """The safe loader (C where available) and one refusing duplicate mapping keys.

    PyYAML is imported with the first YAML definition, not by `import orchestrator`.
    """
    import yaml

    safe: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(safe):  # type: ignore[valid-type,misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    first = seen[key].start_mark.line + 1
                    raise _RefusedError(
                        f"duplicate key {key!r} on line {line} (first on line {first}); YAML "
                        "would silently keep only the last one: remove or rename one"
                    )
                seen[key] = key_node
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    return safe, StrictLoader


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def _check_yaml_events(text: str, limits: Limits) -> None:
    """Bound depth and alias-expanded size in one pass over the parser's events."""
    import yaml

    depth, total = 0, 0
    sizes: dict[str, int] = {}
    open_nodes: list[tuple[str | None, int]] = []
    for event in yaml.parse(text, Loader=_loaders()[0]):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.max_nesting_depth:
                raise _RefusedError(
                    f"nested deeper than {limits.max_nesting_depth} levels (line "
                    f"{_line(event)}); flatten it, or raise the limit "
                    f"max_nesting_depth ({_ENV}MAX_NESTING_DEPTH)"
                )
            open_nodes.append((event.anchor, total))
            total += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = total - start
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                raise _RefusedError(
                    f"alias *{event.anchor} on line {_line(event)} refers to a "
                    "value that contains it (a recursive alias) or is not defined; remove it"
                )
            total += sizes[event.anchor]
        if total > limits.max_definition_nodes:
            raise _RefusedError(
                f"more than {limits.max_definition_nodes} values once its aliases are "
                "expanded (an alias bomb?); write the values out, or raise the limit "
                f"max_definition_nodes ({_ENV}MAX_DEFINITION_NODES)"
            )


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RefusedError(f"duplicate key {key!r}; remove or rename one")
        out[key] = value
    return out


def _json_constant(name: str) -> Any:
    raise _RefusedError(f"{name} is not a JSON number; use null or a string")


def parse_definition(text: str, *, is_json: bool, limits: Limits | None = None) -> Any:
    """Parse definition text under the limits; raise `ValueError` naming what is wrong."""
    limits = limits or Limits.from_settings()
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_definition_bytes:
        raise _RefusedError(
            f"{size} bytes, over the limit of {limits.max_definition_bytes}; split the "
            f"workflow, or raise the limit max_definition_bytes ({_ENV}MAX_DEFINITION_BYTES)"
        )
    if is_json:
        try:
            data = json.loads(text, object_pairs_hook=_json_pairs, parse_constant=_json_constant)
        except RecursionError:
            raise _RefusedError(
                f"nested deeper than {limits.max_nesting_depth} levels; flatten it"
            ) from None
        if nesting_depth(data, stop_at=limits.max_nesting_depth) > limits.max_nesting_depth:
            raise _RefusedError(
                f"nested deeper than {limits.max_nesting_depth} levels; flatten it, or raise "
                f"the limit max_nesting_depth ({_ENV}MAX_NESTING_DEPTH)"
            )
        return data
    _check_yaml_events(text, limits)
    loader = _loaders()[1](text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_workflow(path: str | Path, *, limits: Limits | None = None) -> AdvancedWorkflow:
    """Load and validate a definition (`.yaml`, `.yml` or `.json`).

    Raises `WorkflowDefinitionError` listing every problem, including unreadable files,
    files that are not UTF-8 and files over the limits (see `policies.Limits`).
    """
    source = str(path)
    file = Path(path)
    limits = limits or Limits.from_settings()
    is_json = file.suffix.lower() == ".json"
    kind = "JSON" if is_json else "YAML"

    def refuse(message: str) -> WorkflowDefinitionError:
        return WorkflowDefinitionError([DefinitionProblem("file", message)], source=source)

    try:
        size = file.stat().st_size
        if size > limits.max_definition_bytes:
            raise refuse(
                f"{source} is {size} bytes, over the limit of {limits.max_definition_bytes}; "
                "split the workflow, or raise the limit max_definition_bytes "
                f"({_ENV}MAX_DEFINITION_BYTES)"
            )
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise refuse(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise refuse(
            f"{source} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    if is_json:
        syntax_errors: tuple[type[Exception], ...] = (json.JSONDecodeError,)
    else:
        import yaml

        syntax_errors = (yaml.YAMLError,)
    try:
        data = parse_definition(text, is_json=is_json, limits=limits)
    except _RefusedError as exc:
        raise refuse(f"refused {kind}: {exc}") from None
    except syntax_errors as exc:
        raise refuse(f"not valid {kind}: {exc}") from None
    return AdvancedWorkflow.from_dict(data, source=source)


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow definition (YAML field names)."""
    return AdvancedWorkflow.model_json_schema(by_alias=True, mode="validation")


def unregistered_actions(workflow: AdvancedWorkflow) -> list[DefinitionProblem]:
    """Every action, agent or tool the workflow names that its `actions:` module does not
    register, with the closest registered name; an unimportable module is one problem."""
    try:
        registry = load_actions_module(workflow.actions or "")
    except ActionNotFoundError as exc:
        return [DefinitionProblem("actions", str(exc))]
    names = sorted(getattr(registry, "names", []))
    problems = []
    for step in workflow.iter_steps():
        wanted: list[tuple[str, str]] = []
        if step.step_type in (StepType.SEQUENTIAL, StepType.WORKER, StepType.ORCHESTRATOR):
            field = "action" if step.action else "agent_capability"
            wanted.append((field, step.action or step.agent_capability or ""))
        wanted.extend(("tools", tool) for tool in step.tools if not _has_tool(registry, tool))
        for field, name in wanted:
            if field != "tools" and registry.has_action(name):
                continue
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                DefinitionProblem(
                    f"step '{step.step_id}'.{field}",
                    f"'{name}' is not registered in {workflow.actions}{hint}; register it "
                    "on that module's `registry` or fix the name",
                )
            )
    return problems


def _has_tool(registry: Any, name: str) -> bool:
    try:
        registry.tool(name)
    except ActionNotFoundError:
        return False
    return True
