"""Actions of the nightly report: three slow, independent fetches and a summary."""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator import ActionRegistry

registry = ActionRegistry()


@registry.action("fetch")
async def fetch(source: str, day: str) -> dict[str, Any]:
    """Pretend to query a slow reporting source for one day (150 ms)."""
    await asyncio.sleep(0.15)
    return {"source": source, "day": day, "rows": len(source) * 100 + len(day)}


@registry.action("summarize")
async def summarize(sales: dict[str, Any], stock: dict[str, Any], web: dict[str, Any]) -> str:
    """One line over the three sources."""
    total = sales["rows"] + stock["rows"] + web["rows"]
    return f"{total} rows from sales, stock and web"
