"""The step cache seam: where a `cacheable: true` step's output is looked up and stored.

Nodes see only the `StepCache` protocol; the orchestrator passes an implementation (a table
in the run's SQLite file, or memory) in `RunServices.cache`. Entries are keyed by workflow,
version, action and the canonical JSON of the step's mapped inputs, so a new version or
different inputs never hit an old entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StepCache(Protocol):
    """Outputs of cacheable steps, valid for a time-to-live. Methods may block (call them off
    the event loop)."""

    def get(self, key: str, now: float) -> tuple[bool, Any]:
        """`(True, output)` for an entry not expired at `now`, else `(False, None)`."""

    def put(self, key: str, value: Any, now: float, ttl: float) -> None:
        """Store `value` under `key` until `now + ttl`."""


def cache_key(workflow_id: str, version: str, action: str, inputs: Mapping[str, Any]) -> str:
    """The cache key of one call: a digest of workflow, version, action and inputs."""
    text = json.dumps(
        [workflow_id, version, action, dict(inputs)],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()
