"""Turning the definition stored in state back into an `AdvancedWorkflow`, once per process."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from threading import Lock
from typing import Any, TypeVar

from state import AdvancedWorkflow, WorkflowStep

_CACHE: OrderedDict[str, AdvancedWorkflow] = OrderedDict()
_STEP_CACHE: OrderedDict[str, WorkflowStep] = OrderedDict()
_LOCK = Lock()
_MAX = 256


def fingerprint(data: Any) -> str:
    """A stable digest of plain data."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def workflow_from_state(data: dict[str, Any], key: str | None = None) -> AdvancedWorkflow:
    """Parse (and validate) a stored definition; `key` skips re-hashing when known."""
    key = key or fingerprint(data)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    workflow = AdvancedWorkflow.from_dict(data)
    with _LOCK:
        _CACHE[key] = workflow
        if len(_CACHE) > _MAX:
            _CACHE.popitem(last=False)
    return workflow


def step_from_data(data: dict[str, Any]) -> WorkflowStep:
    """Parse a step definition carried by a task (cached by content)."""
    key = fingerprint(data)
    with _LOCK:
        cached = _STEP_CACHE.get(key)
        if cached is not None:
            return cached
    step = WorkflowStep.model_validate(data)
    with _LOCK:
        _STEP_CACHE[key] = step
        if len(_STEP_CACHE) > _MAX * 8:
            _STEP_CACHE.popitem(last=False)
    return step


_T = TypeVar("_T")


def per_workflow(fn: Callable[[AdvancedWorkflow], _T]) -> Callable[[AdvancedWorkflow], _T]:
    """Memoise a derivation of a workflow (workflows are immutable but not hashable)."""
    memo: OrderedDict[int, tuple[AdvancedWorkflow, _T]] = OrderedDict()

    @functools.wraps(fn)
    def wrapper(workflow: AdvancedWorkflow) -> _T:
        hit = memo.get(id(workflow))
        if hit is not None and hit[0] is workflow:
            return hit[1]
        value = fn(workflow)
        memo[id(workflow)] = (workflow, value)  # the strong ref keeps the id from being reused
        if len(memo) > _MAX:
            memo.popitem(last=False)
        return value

    return wrapper
