"""The reducers of the run state's channels.

LangGraph's `DeltaChannel` calls a reducer with the current value and a batch of writes;
reducers here are batching-invariant (folding two batches one after the other gives the same
value as folding them at once), so a checkpoint can be rebuilt by replaying writes. The
two-argument forms serve plain reducer channels (`Annotated[T, reducer]`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from threading import Lock
from typing import Any


def merge_dicts(current: dict[str, Any] | None, writes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Reducer: later writes win key by key (batching-invariant, as DeltaChannel requires)."""
    merged = dict(current or {})
    for write in writes:
        merged.update(write)
    return merged


def append_unique(current: list[str] | None, writes: Sequence[list[str]]) -> list[str]:
    """Reducer: append ids not yet present, keeping first-seen order.

    A step appends one or two ids to a list as long as the run. A short list is scanned (in
    C); a long one is looked up in a set of its ids that passes from each list to the list
    built from it (`_members`), so a write costs the list's copy, not a set of every id.
    """
    base = current or []
    new = [item for write in writes for item in write]
    if len(base) <= _SCAN_AT_MOST_IDS and len(new) <= _SCAN_AT_MOST:
        added: list[str] = []
        for item in new:
            if item not in added and item not in base:
                added.append(item)
        return [*base, *added]
    seen = _members(base)
    added = []
    for item in new:
        if item not in seen:
            seen.add(item)
            added.append(item)
    result = [*base, *added]
    if len(result) > _SCAN_AT_MOST_IDS:
        with _MEMBERS_LOCK:
            _MEMBERS[id(result)] = (result, seen)
            if len(_MEMBERS) > _MEMBERS_MAX:
                _MEMBERS.popitem(last=False)
    return result


_SCAN_AT_MOST = 4
"""Writes of up to this many ids scan a short list; larger ones build a set once."""
_SCAN_AT_MOST_IDS = 256
"""Lists of up to this many ids are scanned; longer ones use a set of their ids."""
_MEMBERS: OrderedDict[int, tuple[list[str], set[str]]] = OrderedDict()
"""`id(list) -> (list, set of its ids)` of the lists `append_unique` built lately."""
_MEMBERS_MAX = 64
_MEMBERS_LOCK = Lock()


def _members(base: list[str]) -> set[str]:
    """A set of `base`'s ids that the caller may change: the one kept for `base` (taken
    out, as the list built from `base` inherits it) or a new one.

    Sound because lists are never changed in place (see NOTES, "State shape"), and the
    entry keeps `base` alive so its id names it alone. A list merged a second time (another
    history, after time travel) finds no entry and pays for a new set once.
    """
    with _MEMBERS_LOCK:
        hit = _MEMBERS.pop(id(base), None)
    if hit is not None and hit[0] is base:
        return hit[1]
    return set(base)


def merge_two(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: the right dict's keys win."""
    return merge_dicts(left, [right or {}])


def sum_counts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: counts added key by key."""
    total = dict(left or {})
    for key, value in (right or {}).items():
        total[key] = total.get(key, 0) + value
    return total


def add(left: int | None, right: int | None) -> int:
    """Reducer: a running total."""
    return (left or 0) + (right or 0)


def union_two(left: list[str] | None, right: list[str] | None) -> list[str]:
    """Reducer: ids of the right list not yet in the left one, appended."""
    return append_unique(left, [right or []])


def latest_head(left: str | None, right: str | None) -> str | None:
    """Reducer: the steps of one superstep each report the ledger's head; any of them is in
    the chain, and the orchestrator node writes the newest one right after."""
    return right if right is not None else left


def last_write(current: dict[str, Any] | None, writes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Reducer: the latest write replaces the value (batching-invariant)."""
    return dict(writes[-1]) if writes else dict(current or {})
