"""`progress`: the fields a step writes, packed into one channel.

Every finished step reports its result, output, resource usage, where it ended (completed,
failed, skipped), its retries and the audit ledger's head. Stored as one channel per field,
that was one checkpoint write row per field per step (six or seven, against raw LangGraph's
one); packed, a step writes one row. Each packed field keeps its own merge rule, so the
packed value is exactly what the separate fields would hold.

The public fields (`completed_steps`, `step_results`, ...) stay on `EnterpriseWorkflowState`:
the model unpacks `progress` into them when LangGraph builds it for a node, `unpack` does
the same for a checkpoint's raw values, and a run that ends is unpacked into them for good
(`finish_update`), so a finished run's values read as before.

A run started before packing existed keeps its data in the separate channels, which are
still declared: unpacking merges both, so such a run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from state._reducers import add, append_unique, latest_head, merge_dicts, sum_counts

_Batch = Callable[[Any, Sequence[Any]], Any]


def _summed(current: dict[str, Any] | None, writes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    total = dict(current or {})
    for write in writes:
        total = sum_counts(total, write)
    return total


def _total(current: int | None, writes: Sequence[int]) -> int:
    return add(current, sum(int(w or 0) for w in writes))


def _latest(current: str | None, writes: Sequence[str | None]) -> str | None:
    for write in writes:
        current = latest_head(current, write)
    return current


PACKED: dict[str, _Batch] = {
    "step_results": merge_dicts,
    "intermediate_results": merge_dicts,
    "resource_usage": merge_dicts,
    "retry_counts": merge_dicts,
    "completed_steps": append_unique,
    "failed_steps": append_unique,
    "skipped_steps": append_unique,
    "error_counts": _summed,
    "stored_bytes": _total,
    "audit_head": _latest,
}
"""The fields packed into `progress`, each with its batch merge rule (the same rule its own
channel has)."""

PROGRESS = "progress"
"""The channel holding the packed fields."""

_OVERWRITE = "__overwrite__"
"""LangGraph's plain-data form of `Overwrite`: the write replaces the channel's value."""


def merge_progress(
    current: dict[str, Any] | None, writes: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Reducer of `progress`: each packed field merged by its own rule.

    Batching-invariant (as `DeltaChannel` requires) because each field's rule is; only the
    fields a write carries are touched.
    """
    merged = dict(current or {})
    by_field: dict[str, list[Any]] = {}
    for write in writes:
        for key, value in write.items():
            by_field.setdefault(key, []).append(value)
    for key, values in by_field.items():
        merged[key] = _merge_once(key, merged.get(key), values)
    return merged


_LAST: dict[str, tuple[Any, tuple[Any, ...], Any]] = {}
"""Per field: the last merge's value before, its writes and its result."""


def _merge_once(key: str, before: Any, values: list[Any]) -> Any:
    """Merge a field's writes, reusing the result when the same writes meet the same value.

    LangGraph applies a node's writes twice: to a copy of the state for the routing function
    (`local_read`), then to the channel itself. Both start from the same field value and
    carry the same write objects, and merging copies the field (it grows with the run), so
    the second merge takes the first one's result. Sound because nothing mutates these
    values in place: reducers build new containers, nodes never change their input.
    """
    last = _LAST.get(key)
    if (
        last is not None
        and last[0] is before
        and len(last[1]) == len(values)
        and all(a is b for a, b in zip(last[1], values, strict=True))
    ):
        return last[2]
    result = PACKED[key](before, values)
    if before:  # an empty value is cheap to merge; keep no reference to it
        _LAST[key] = (before, tuple(values), result)
    return result


def pack(update: dict[str, Any]) -> dict[str, Any]:
    """A node's update with its packed fields moved into one `progress` write."""
    packed = {key: update[key] for key in PACKED if key in update}
    if not packed:
        return update
    rest = {key: value for key, value in update.items() if key not in PACKED}
    rest[PROGRESS] = packed
    return rest


def unpack(values: Mapping[str, Any]) -> dict[str, Any]:
    """Raw state values (a checkpoint's, a stream's) with `progress` merged into the public
    fields, as a node sees them.

    Cheap for runs started with packing (their public channels are empty until the run
    ends): the packed values are used as they are, not copied.
    """
    out = dict(values)
    packed = values.get(PROGRESS) or {}
    for key, value in packed.items():
        own = out.get(key)
        out[key] = PACKED[key](own, [value]) if own else value
    return out


def finish_update(state: Any, update: dict[str, Any]) -> dict[str, Any]:
    """The update of the step that ends a run, unpacking `progress` into the public fields.

    `state` is the state the node saw (an `EnterpriseWorkflowState` or raw values). The
    packed part of each field, this update's included, is written to the field's own
    channel, whose reducer adds it to what that channel held (nothing, unless the run began
    before packing); `progress` is emptied. A finished run's values (LangGraph Studio's
    output, `get_state`) then read as they did before packing. One write per field, once.
    """
    packed = state.get(PROGRESS) if isinstance(state, Mapping) else getattr(state, PROGRESS)
    final = {key: value for key, value in update.items() if key not in PACKED}
    for key, merge in PACKED.items():
        value = (packed or {}).get(key)
        if key in update:
            value = merge(value, [update[key]])
        if value:
            final[key] = value
    final[PROGRESS] = {_OVERWRITE: {}}
    return final
