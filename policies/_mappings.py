"""Input and output mappings: JMESPath paths over a run's data, and URL placeholders.

A path is a JMESPath expression (https://jmespath.org) such as `input.applicant_id`,
`results."credit-check".score` or `context.items[0]`. `@` is the whole data. A path that finds
nothing gives None. Keys that are not plain identifiers (dashes, spaces, a leading digit) are
written in double quotes. Compiled paths are cached.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from jmespath.parser import ParsedResult

from state import MappingError

_KNOWN_FUNCTIONS: Final = frozenset(Functions().FUNCTION_TABLE)
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DASHED_KEY: Final = re.compile(r"[\w-]+")
_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")
_SCHEME_AND_HOST: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def _first_line(exc: JMESPathError) -> str:
    line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return line.removesuffix(", for expression:").removesuffix(":")


def _hint(path: str) -> str:
    segments = path.split(".")
    if all(_DASHED_KEY.fullmatch(segment) for segment in segments):
        quoted = ".".join(
            segment if _PLAIN_KEY.fullmatch(segment) else f'"{segment}"' for segment in segments
        )
        if quoted != path:
            return (
                f"keys with dashes, spaces or a leading digit need double quotes: write `{quoted}`"
            )
    return 'write a JMESPath such as `context.order.total`, `results."step-1".score` or `@`'


def _function_names(node: Any) -> set[str]:
    if not isinstance(node, dict):
        return set()
    names = {str(node["value"])} if node.get("type") == "function_expression" else set()
    for child in node.get("children", ()):
        names |= _function_names(child)
    return names


@functools.lru_cache(maxsize=1024)
def _compile(path: str) -> ParsedResult:
    if not isinstance(path, str) or not path.strip():
        raise MappingError("path is empty; write a path such as `input.applicant_id` or `@`")
    try:
        compiled = jmespath.compile(path)
    except JMESPathError as exc:
        raise MappingError(f"invalid path `{path}`: {_first_line(exc)}; {_hint(path)}") from exc
    unknown = sorted(_function_names(compiled.parsed) - _KNOWN_FUNCTIONS)
    if unknown:
        raise MappingError(
            f"unknown function `{unknown[0]}()` in path `{path}`;"
            " see https://jmespath.org/specification.html#built-in-functions"
        )
    return compiled


def check_path(path: str) -> str | None:
    """Return why `path` is not a valid mapping path, or None when it is.

    Example:
        `check_path("results.step-1")` explains that the key needs quotes:
        `results."step-1"`.
    """
    try:
        _compile(path)
    except MappingError as exc:
        return str(exc)
    return None


def resolve_path(path: str, data: Any) -> Any:
    """Return what the JMESPath `path` finds in `data`, or None when it finds nothing.

    Raises `MappingError` when the path is invalid or fails on this data (for example
    `abs(name)` on a string).

    Example:
        `resolve_path('results."step-1".score', {"results": {"step-1": {"score": 3}}})` is 3.
    """
    compiled = _compile(path)
    try:
        return compiled.search(data)
    except JMESPathError as exc:
        raise MappingError(f"path `{path}` failed: {_first_line(exc)}") from exc


def map_inputs(mapping: Mapping[str, str], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Return a step's keyword arguments: each `{param: path}` resolved over `namespace`.

    `namespace` is `{"input": ..., "context": ..., "results": ..., "globals": ...}`.

    Example:
        `map_inputs({"applicant_id": "input.applicant_id"}, ns)` is `{"applicant_id": "A-1"}`.
    """
    arguments: dict[str, Any] = {}
    for param, path in mapping.items():
        try:
            arguments[param] = resolve_path(path, namespace)
        except MappingError as exc:
            raise MappingError(f"input mapping for parameter '{param}': {exc}") from exc
    return arguments


def map_outputs(mapping: Mapping[str, str], output: Any) -> dict[str, Any]:
    """Return the context updates of a step: each `{context_key: path}` resolved over `output`.

    `@` is the whole output.

    Example:
        `map_outputs({"score": "score", "raw": "@"}, {"score": 7})` is
        `{"score": 7, "raw": {"score": 7}}`.
    """
    updates: dict[str, Any] = {}
    for key, path in mapping.items():
        try:
            updates[key] = resolve_path(path, output)
        except MappingError as exc:
            raise MappingError(f"output mapping for context key '{key}': {exc}") from exc
    return updates


def fill_placeholders(template: str, namespace: Mapping[str, Any]) -> str:
    """Return `template` with every `{path}` replaced by what the path finds in `namespace`.

    Values are inserted with `str()`. Placeholders in the base of a URL (a placeholder at
    the very start of the template, or one before the end of `scheme://host:port`) are
    inserted verbatim, so a base URL kept in `globals` works. Every later placeholder (path
    segments, query values) is percent-encoded with `urllib.parse.quote(value, safe="")`,
    so a `/`, `?` or `&` in a value cannot change the URL's shape. Placeholders cannot
    contain braces, and there is no escape for a literal `{`.

    Raises `MappingError` naming the placeholder when a path is invalid or finds nothing.

    Example:
        `fill_placeholders("{globals.api}/orders/{context.order.id}", ns)` may give
        `"https://api.example.com/orders/A%2F1"`.
    """
    base_end = _base_end(template)

    def replace(match: re.Match[str]) -> str:
        path = match.group(1).strip()
        try:
            value = resolve_path(path, namespace)
        except MappingError as exc:
            raise MappingError(f"placeholder {match.group(0)} in `{template}`: {exc}") from exc
        if value is None:
            raise MappingError(
                f"placeholder {match.group(0)} in `{template}` found nothing; set `{path}`"
                " (in globals, the run input or an earlier step's output mapping)"
            )
        text = str(value)
        return text if match.start() < base_end else quote(text, safe="")

    return _PLACEHOLDER.sub(replace, template)


def _base_end(template: str) -> int:
    if template.startswith("{"):
        leading = _PLACEHOLDER.match(template)
        return leading.end() if leading else 0
    scheme_and_host = _SCHEME_AND_HOST.match(template)
    return scheme_and_host.end() if scheme_and_host else 0
