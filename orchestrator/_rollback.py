"""Finding the checkpoint a rollback returns to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from state import RunStateError


def rollback_point(values: Mapping[str, Any], to: str) -> dict[str, Any]:
    """`{checkpoint_id, completed}` recorded before rollback point `to`.

    Raises `RunStateError` naming the points the run has when `to` is not one of them.
    """
    points = values.get("rollback_points") or {}
    point = points.get(to)
    if not point or not point.get("checkpoint_id"):
        known = ", ".join(sorted(points)) or "none yet (mark steps with `rollback_point: true`)"
        raise RunStateError(f"run has no rollback point '{to}'; its rollback points are: {known}")
    return dict(point)
